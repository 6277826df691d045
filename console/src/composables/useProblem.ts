import { ElMessage } from 'element-plus'
import { useI18n } from 'vue-i18n'
import { useRouter } from 'vue-router'
import { ProblemError, type FieldError } from '../api'
import { useSessionStore } from '../stores/session'

/** Turns a failed call into something the user can read, in their language where we can. */
export function useProblem() {
  const { t } = useI18n()
  const router = useRouter()
  const session = useSessionStore()

  /** The problem's detail, followed by the field errors no form field shows (all of them by default). */
  function describe(err: unknown, unplaced?: FieldError[]): string {
    if (err instanceof ProblemError) {
      if (err.status === 0) return t('errors.network')
      const summary = err.detail || err.title || t('errors.unexpected', { status: err.status })
      const fields = (unplaced ?? err.errors).map(({ field, message }) => (field ? `${field}: ${message}` : message))
      return [summary, ...fields].join(' — ')
    }
    return err instanceof Error ? err.message : String(err)
  }

  /** Shows the error; a 401 inside the console means the session ended, so it goes to the login page. */
  function notify(err: unknown): void {
    if (err instanceof ProblemError && err.status === 401 && session.loggedIn) {
      session.forget()
      ElMessage.error(t('errors.sessionExpired'))
      void router.push({ name: 'login', query: { redirect: router.currentRoute.value.fullPath } })
      return
    }
    ElMessage.error(describe(err))
  }

  return { notify, describe }
}
