import { computed, ref } from 'vue'
import { defineStore } from 'pinia'
import { api, bindApiContext, ProblemError } from '../api'
import type { Me, SessionStart } from '../types'

const ORG_KEY = 'switchboard.org'
// Per tab: a read-only view of a tenant ends with the tab.
const VIEW_KEY = 'switchboard.impersonate'

/** What a page or menu item needs: a permission, and for the admin pages the platform organisation. */
export interface Access {
  permission?: string
  platform?: boolean
}

/** Who is logged in, in which organisation, and the CSRF token for writes. */
export const useSessionStore = defineStore('session', () => {
  const me = ref<Me | null>(null)
  // The CSRF token lives only in memory: /me hands out a fresh one after a reload.
  const csrfToken = ref<string | null>(null)
  const orgId = ref<string | null>(localStorage.getItem(ORG_KEY))

  const viewing = ref<string | null>(sessionStorage.getItem(VIEW_KEY))

  bindApiContext({ csrfToken: () => csrfToken.value, orgId: () => orgId.value, impersonate: () => viewing.value })

  const loggedIn = computed(() => me.value !== null)
  /** The current organisation is the platform's (where the admin pages live). */
  const isPlatform = computed(() => me.value?.current_org?.kind === 'platform')

  /** Whether the user holds a permission in the current organisation (the server has the last word). */
  function can(permission: string): boolean {
    return me.value?.permissions.includes(permission) ?? false
  }

  function allows(access: Access): boolean {
    if (access.platform && !isPlatform.value) return false
    return !access.permission || can(access.permission)
  }

  function rememberOrg(id: string | null): void {
    orgId.value = id
    if (id) localStorage.setItem(ORG_KEY, id)
    else localStorage.removeItem(ORG_KEY)
  }

  /** Loads /me; answers null when nobody is logged in. */
  async function loadMe(): Promise<Me | null> {
    try {
      const next = await api.me()
      me.value = next
      csrfToken.value = next.csrf_token
      if (!next.impersonating) rememberOrg(next.current_org?.id ?? null)
      return next
    } catch (err) {
      if (!(err instanceof ProblemError)) throw err
      if (err.status === 401) {
        forget()
        return null
      }
      if ((err.status === 403 || err.status === 404) && viewing.value) {
        setViewing(null)
        return loadMe()
      }
      // A remembered organisation the user no longer belongs to (or one left
      // behind by another account on this browser): fall back to the default.
      if ((err.status === 403 || err.status === 404) && orgId.value) {
        rememberOrg(null)
        return loadMe()
      }
      throw err
    }
  }

  /** Takes the answer of signup, login or invitation accept, then loads the full picture. */
  async function start(session: SessionStart): Promise<void> {
    csrfToken.value = session.csrf_token
    if (session.current_org) rememberOrg(session.current_org.id)
    await loadMe()
  }

  function setViewing(id: string | null): void {
    viewing.value = id
    if (id) sessionStorage.setItem(VIEW_KEY, id)
    else sessionStorage.removeItem(VIEW_KEY)
  }

  /** A platform admin starts reading a tenant's console (audited by the server). */
  async function startImpersonation(tenantId: string): Promise<void> {
    await api.startImpersonation(tenantId)
    setViewing(tenantId)
    await loadMe()
  }

  async function stopImpersonation(): Promise<void> {
    setViewing(null)
    await loadMe()
  }

  async function switchOrg(id: string): Promise<void> {
    rememberOrg(id)
    await loadMe()
  }

  async function logout(): Promise<void> {
    try {
      await api.logout()
    } finally {
      forget()
    }
  }

  /** Drops what we know about the user; the remembered organisation stays for their next login. */
  function forget(): void {
    me.value = null
    csrfToken.value = null
    setViewing(null)
  }

  return { me, orgId, loggedIn, isPlatform, can, allows, loadMe, start, switchOrg, logout, forget, startImpersonation, stopImpersonation }
})
