import { computed } from 'vue'
import { useI18n } from 'vue-i18n'

/**
 * Labels of the inbox's identifiers (statuses, channel types, config keys, …): known ones are
 * translated, new ones show as the server sent them.
 */
export function useInboxLabels() {
  const { t, te, locale } = useI18n()
  const label = (group: string, value: string | null | undefined): string => {
    if (!value) return ''
    const key = `${group}.${value}`
    return te(key) ? t(key) : value
  }
  const times = computed(() => new Intl.DateTimeFormat(locale.value, { timeStyle: 'short' }))
  const dates = computed(() => new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'short' }))
  const shortDates = computed(() => new Intl.DateTimeFormat(locale.value, { month: 'short', day: 'numeric' }))

  return {
    conversationStatus: (s: string) => label('conversationStatuses', s),
    priority: (p: string) => label('priorities', p),
    conversationType: (x: string) => label('conversationTypes', x),
    channelType: (x: string | undefined) => label('channelTypes', x),
    channelKey: (k: string) => label('channelKeys', k),
    identityKind: (k: string) => label('identityKinds', k),
    messageStatus: (s: string) => label('message.statuses', s),
    author: (a: string) => label('message.authors', a),
    /** A time today, or the day for anything older: what a list has room for. */
    listTime: (iso: string | null | undefined): string => {
      if (!iso) return ''
      const d = new Date(iso)
      const now = new Date()
      return d.toDateString() === now.toDateString() ? times.value.format(d) : shortDates.value.format(d)
    },
    dateTime: (iso: string | null | undefined): string => (iso ? dates.value.format(new Date(iso)) : ''),
    size: (bytes: number): string => {
      if (bytes < 1024) return `${bytes} B`
      if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
      return `${(bytes / 1024 / 1024).toFixed(1)} MB`
    },
  }
}
