package identity

import "github.com/switchboard-cloud/switchboard/modules/access"

var admins = []string{access.PlatformAdmin, access.TenantOwner, access.TenantAdmin, access.VendorManager}

// Permissions this module owns.
var (
	PermMembersRead      = access.Permission{Name: "members:read", Module: "identity", Description: "See the organisation's members", Roles: append([]string{access.Supervisor}, admins...)}
	PermMembersWrite     = access.Permission{Name: "members:write", Module: "identity", Description: "Change members' roles, disable and remove members", Roles: admins}
	PermInvitationsRead  = access.Permission{Name: "invitations:read", Module: "identity", Description: "See invitations", Roles: admins}
	PermInvitationsWrite = access.Permission{Name: "invitations:write", Module: "identity", Description: "Invite people and revoke invitations", Roles: admins}
	PermAPIKeysRead      = access.Permission{Name: "api_keys:read", Module: "identity", Description: "See API keys (never the keys themselves)", Roles: []string{access.PlatformAdmin, access.TenantOwner, access.TenantAdmin}}
	PermAPIKeysWrite     = access.Permission{Name: "api_keys:write", Module: "identity", Description: "Create and revoke API keys", Roles: []string{access.PlatformAdmin, access.TenantOwner, access.TenantAdmin}}
)

// Permissions returns this module's catalogue entries.
func Permissions() []access.Permission {
	return []access.Permission{PermMembersRead, PermMembersWrite, PermInvitationsRead, PermInvitationsWrite, PermAPIKeysRead, PermAPIKeysWrite}
}
