import { computed } from 'vue'
import { useI18n } from 'vue-i18n'

/**
 * Labels for values the server sends as identifiers. Known ones are
 * translated; new ones (a custom role, a status added later) show as sent.
 */
export function useLabels() {
  const { t, te, locale } = useI18n()

  const label = (group: string, value: string): string => {
    const key = `${group}.${value}`
    return te(key) ? t(key) : value
  }

  const dates = computed(() => new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'short' }))

  return {
    roleLabel: (role: string) => label('roleNames', role),
    statusLabel: (status: string) => label('statuses', status),
    orgKindLabel: (kind: string) => label('orgKinds', kind),
    moduleLabel: (module: string) => label('modules', module),
    formatDate: (iso: string | null | undefined): string => (iso ? dates.value.format(new Date(iso)) : ''),
  }
}
