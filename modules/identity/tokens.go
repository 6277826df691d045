package identity

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
)

// mailTexts are the one-time-link mails in each console language.
var mailTexts = map[string]map[string][2]string{
	"en": {
		purposeVerify: {"Confirm your email for Switchboard", "Hello %s,\n\nconfirm your email address by opening this link:\n\n%s\n\nThe link works for 72 hours.\n"},
		purposeReset:  {"Reset your Switchboard password", "Hello %s,\n\nsomeone asked to reset your password. To choose a new one, open:\n\n%s\n\nThe link works for one hour. If it was not you, ignore this mail.\n"},
		"invite":      {"You are invited to %s on Switchboard", "Hello,\n\n%s invites you to join %s on Switchboard as %s. Accept here:\n\n%s\n\nThe invitation is valid for 7 days.\n"},
	},
	"zh-CN": {
		purposeVerify: {"确认您的 Switchboard 邮箱", "%s，您好：\n\n请打开以下链接确认您的邮箱地址：\n\n%s\n\n链接 72 小时内有效。\n"},
		purposeReset:  {"重置您的 Switchboard 密码", "%s，您好：\n\n有人请求重置您的密码。请打开以下链接设置新密码：\n\n%s\n\n链接一小时内有效。如非本人操作，请忽略此邮件。\n"},
		"invite":      {"邀请您加入 Switchboard 上的 %s", "您好：\n\n%s 邀请您以 %s 的身份加入 Switchboard 上的 %s。请点击接受：\n\n%s\n\n邀请 7 天内有效。\n"},
	},
}

func texts(locale string) map[string][2]string {
	if t, ok := mailTexts[locale]; ok {
		return t
	}
	return mailTexts["en"]
}

func (s *Service) link(path string, token string) string {
	return s.opts.PublicURL + path + "?token=" + url.QueryEscape(token)
}

// issueToken stores a one-time token for u and returns the secret.
func (s *Service) issueToken(ctx context.Context, u User, purpose string) (string, error) {
	tok := ids.Secret(32)
	ttl := verifyTTL
	if purpose == purposeReset {
		ttl = resetTTL
	}
	now := s.now()
	row := userToken{ID: ids.Hash(tok), UserID: u.ID, Purpose: purpose, ExpiresAt: now.Add(ttl), CreatedAt: now}
	if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Create(&row).Error }); err != nil {
		return "", fmt.Errorf("issue %s token: %w", purpose, err)
	}
	return tok, nil
}

func (s *Service) sendVerification(ctx context.Context, u User) error {
	tok, err := s.issueToken(ctx, u, purposeVerify)
	if err != nil {
		return err
	}
	t := texts(u.Locale)[purposeVerify]
	return s.mail.Send(ctx, u.Email, t[0], fmt.Sprintf(t[1], u.Name, s.link("/verify-email", tok)))
}

// consumeToken marks a live token used and returns its user id. The conditional update makes a
// token single-use even under concurrent requests.
func (s *Service) consumeToken(ctx context.Context, tok, purpose string) (uuid.UUID, error) {
	var row userToken
	now := s.now()
	err := s.db.Run(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("id = ? AND purpose = ?", ids.Hash(tok), purpose).Take(&row).Error; err != nil {
			return err
		}
		if row.UsedAt != nil || !row.ExpiresAt.After(now) {
			return gorm.ErrRecordNotFound
		}
		res := tx.Model(&userToken{}).Where("id = ? AND used_at IS NULL", row.ID).Update("used_at", now)
		if res.Error == nil && res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		return res.Error
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return uuid.Nil, apperr.Invalid("token", "is invalid, used or expired")
	}
	return row.UserID, err
}

// TokenInput carries a one-time token.
type TokenInput struct {
	Token string `json:"token" validate:"required,max=200"`
}

// VerifyEmail confirms the address of the token's user.
func (s *Service) VerifyEmail(ctx context.Context, tok string) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		uid, err := s.consumeToken(ctx, tok, purposeVerify)
		if err != nil {
			return err
		}
		var u User
		return s.db.Run(ctx, func(tx *gorm.DB) error {
			if err := tx.Model(&User{}).Where("id = ? AND email_verified_at IS NULL", uid).Update("email_verified_at", s.now()).Error; err != nil {
				return err
			}
			if err := tx.Where("id = ?", uid).Take(&u).Error; err != nil {
				return err
			}
			s.changed(ctx)
			s.auditAccount(ctx, "auth.email_verified", u.Email, "")
			return nil
		})
	})
}

// ResendVerification sends a new verification mail unless the address is verified.
func (s *Service) ResendVerification(ctx context.Context, userID uuid.UUID) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var u User
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Where("id = ?", userID).Take(&u).Error }); err != nil {
			return err
		}
		if u.EmailVerifiedAt != nil {
			return nil
		}
		return s.sendVerification(ctx, u)
	})
}

// ResetRequest asks for a password reset mail.
type ResetRequest struct {
	Email string `json:"email" validate:"required,email,max=254"`
}

// RequestPasswordReset mails a reset link if the account exists; the caller learns nothing
// about whether it does.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	return s.db.Tx(ctx, func(ctx context.Context) error {
		var u User
		err := s.db.Run(ctx, func(tx *gorm.DB) error {
			return tx.Where("email = ? AND disabled_at IS NULL", NormalizeEmail(email)).Take(&u).Error
		})
		if errors.Is(err, gorm.ErrRecordNotFound) {
			s.auditAccount(ctx, "auth.password_reset_requested", NormalizeEmail(email), "unknown email")
			return nil
		}
		if err != nil {
			return err
		}
		s.auditAccount(ctx, "auth.password_reset_requested", u.Email, "")
		tok, err := s.issueToken(ctx, u, purposeReset)
		if err != nil {
			return err
		}
		t := texts(u.Locale)[purposeReset]
		return s.mail.Send(ctx, u.Email, t[0], fmt.Sprintf(t[1], u.Name, s.link("/reset-password", tok)))
	})
}

// ResetConfirm sets a new password with a reset token.
type ResetConfirm struct {
	Token    string `json:"token" validate:"required,max=200"`
	Password string `json:"password" validate:"required,min=10,max=200"`
}

// ResetPassword sets the password, clears any lockout and ends every session of the user.
func (s *Service) ResetPassword(ctx context.Context, in ResetConfirm) error {
	hash, err := HashPassword(in.Password)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(ctx context.Context) error {
		uid, err := s.consumeToken(ctx, in.Token, purposeReset)
		if err != nil {
			return err
		}
		var email string
		if err := s.db.Run(ctx, func(tx *gorm.DB) error { return tx.Model(&User{}).Where("id = ?", uid).Pluck("email", &email).Error }); err != nil {
			return err
		}
		s.auditAccount(ctx, "auth.password_reset", email, "all sessions ended")
		if err := s.db.Run(ctx, func(tx *gorm.DB) error {
			// Following the mailed link also proves the address.
			return tx.Model(&User{}).Where("id = ?", uid).Updates(map[string]any{
				"password_hash": hash, "failed_logins": 0, "locked_until": nil, "updated_at": s.now(),
				"email_verified_at": gorm.Expr("COALESCE(email_verified_at, ?)", s.now()),
			}).Error
		}); err != nil {
			return err
		}
		return s.endSessions(ctx, uid)
	})
}
