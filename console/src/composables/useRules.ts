import { useI18n } from 'vue-i18n'
import type { FormItemRule } from 'element-plus'

/** Keep in step with the server's password policy; the server has the last word. */
export const PASSWORD_MIN_LENGTH = 10

/**
 * Client-side checks that spare a round trip. Call these inside a computed so
 * the messages follow a language switch.
 */
export function useRules() {
  const { t } = useI18n()
  return {
    required: (): FormItemRule => ({ required: true, whitespace: true, message: t('validation.required'), trigger: 'blur' }),
    email: (): FormItemRule => ({ type: 'email', message: t('validation.email'), trigger: 'blur' }),
    password: (): FormItemRule => ({
      min: PASSWORD_MIN_LENGTH,
      message: t('validation.passwordLength', { min: PASSWORD_MIN_LENGTH }),
      trigger: 'blur',
    }),
  }
}
