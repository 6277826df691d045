import { createRouter, createWebHistory } from 'vue-router'
import { i18n } from './i18n'
import { useSessionStore, type Access } from './stores/session'

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without logging in. */
    public?: boolean
    /** Message key of the page's title. */
    title?: string
    /** Who may open the page; others land on the home page. */
    access?: Access
  }
}

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    // Public pages wrap themselves in PublicLayout; only the console proper shares a parent route.
    { path: '/login', name: 'login', component: () => import('./pages/LoginPage.vue'), meta: { public: true, title: 'auth.loginSubmit' } },
    { path: '/signup', name: 'signup', component: () => import('./pages/SignupPage.vue'), meta: { public: true, title: 'auth.signupSubmit' } },
    { path: '/verify-email', name: 'verify-email', component: () => import('./pages/VerifyEmailPage.vue'), meta: { public: true, title: 'auth.verifyTitle' } },
    { path: '/forgot-password', name: 'forgot-password', component: () => import('./pages/ForgotPasswordPage.vue'), meta: { public: true, title: 'auth.forgotTitle' } },
    { path: '/reset-password', name: 'reset-password', component: () => import('./pages/ResetPasswordPage.vue'), meta: { public: true, title: 'auth.resetTitle' } },
    { path: '/invite/:token', name: 'invite', component: () => import('./pages/InvitePage.vue'), props: true, meta: { public: true, title: 'invite.accept' } },
    { path: '/dev/mailbox', name: 'dev-mailbox', component: () => import('./pages/DevMailboxPage.vue'), meta: { public: true, title: 'mailbox.title' } },
    {
      path: '/',
      component: () => import('./components/AppLayout.vue'),
      children: [
        { path: '', name: 'home', component: () => import('./pages/HomePage.vue'), meta: { title: 'home.title' } },
        { path: 'members', name: 'members', component: () => import('./pages/MembersPage.vue'), meta: { title: 'members.title' } },
        { path: 'roles', name: 'roles', component: () => import('./pages/RolesPage.vue'), meta: { title: 'roles.title' } },
        { path: 'api-keys', name: 'api-keys', component: () => import('./pages/ApiKeysPage.vue'), meta: { title: 'apiKeys.title' } },
        { path: 'audit', name: 'audit', component: () => import('./pages/AuditPage.vue'), meta: { title: 'audit.title' } },
        {
          path: 'inbox',
          name: 'inbox',
          component: () => import('./pages/InboxPage.vue'),
          meta: { title: 'inbox.title', access: { permission: 'conversations:read' } },
        },
        {
          path: 'contacts',
          name: 'contacts',
          component: () => import('./pages/ContactsPage.vue'),
          meta: { title: 'contacts.title', access: { permission: 'contacts:read' } },
        },
        {
          path: 'contacts/:id',
          name: 'contact',
          component: () => import('./pages/ContactPage.vue'),
          props: true,
          meta: { title: 'contact.title', access: { permission: 'contacts:read' } },
        },
        {
          path: 'channels',
          name: 'channels',
          component: () => import('./pages/ChannelsPage.vue'),
          meta: { title: 'channels.title', access: { permission: 'channels:read' } },
        },
        {
          path: 'channels/new',
          name: 'channel-new',
          component: () => import('./pages/ChannelSetupPage.vue'),
          meta: { title: 'channelSetup.newTitle', access: { permission: 'channels:manage' } },
        },
        {
          path: 'channels/:id',
          name: 'channel',
          component: () => import('./pages/ChannelSetupPage.vue'),
          props: true,
          meta: { title: 'channels.title', access: { permission: 'channels:read' } },
        },
        {
          path: 'canned-responses',
          name: 'canned-responses',
          component: () => import('./pages/CannedResponsesPage.vue'),
          meta: { title: 'canned.title', access: { permission: 'canned_responses:manage' } },
        },
        {
          path: 'billing',
          name: 'billing',
          component: () => import('./pages/BillingPage.vue'),
          meta: { title: 'billing.title', access: { permission: 'billing:read' } },
        },
        {
          path: 'admin/tenants',
          name: 'admin-tenants',
          component: () => import('./pages/AdminTenantsPage.vue'),
          meta: { title: 'adminTenants.title', access: { platform: true, permission: 'tenants:manage' } },
        },
        {
          path: 'admin/plans',
          name: 'admin-plans',
          component: () => import('./pages/AdminPlansPage.vue'),
          meta: { title: 'adminPlans.title', access: { platform: true, permission: 'plans:manage' } },
        },
        {
          path: 'admin/billing',
          name: 'admin-billing',
          component: () => import('./pages/AdminBillingPage.vue'),
          meta: { title: 'adminBilling.title', access: { platform: true, permission: 'billing:run' } },
        },
      ],
    },
    { path: '/:unknown(.*)*', name: 'not-found', component: () => import('./pages/NotFoundPage.vue'), meta: { public: true, title: 'notFound.title' } },
  ],
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  const session = useSessionStore()
  if (!session.loggedIn) {
    // A failure other than "not logged in" (server down) also lands on the
    // login page, which is where the user can retry from.
    const me = await session.loadMe().catch(() => null)
    if (!me) return { name: 'login', query: { redirect: to.fullPath } }
  }
  // A page the current organisation or role does not open (the server would answer 403 or 404).
  if (to.meta.access && !session.allows(to.meta.access)) return { name: 'home' }
  return true
})

function updateTitle(): void {
  const key = router.currentRoute.value.meta.title
  const appName = i18n.global.t('app.name')
  document.title = key ? `${i18n.global.t(key)} · ${appName}` : appName
}

router.afterEach(updateTitle)

export { updateTitle }
