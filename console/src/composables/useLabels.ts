import { computed } from 'vue'
import { useI18n } from 'vue-i18n'
import { formatMoney } from '../billing'

const DAY_MS = 24 * 60 * 60 * 1000

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
  // Billing periods are UTC days: shown as days, in UTC, wherever the reader is.
  const days = computed(() => new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeZone: 'UTC' }))
  const counts = computed(() => new Intl.NumberFormat(locale.value, { maximumFractionDigits: 0 }))

  const formatDay = (iso: string | null | undefined): string => (iso ? days.value.format(new Date(iso)) : '')

  return {
    roleLabel: (role: string) => label('roleNames', role),
    statusLabel: (status: string) => label('statuses', status),
    orgKindLabel: (kind: string) => label('orgKinds', kind),
    moduleLabel: (module: string) => label('modules', module),
    meterLabel: (meter: string) => label('meters', meter),
    priceModelLabel: (model: string) => label('priceModels', model),
    invoiceStatusLabel: (status: string) => label('invoiceStatuses', status),
    formatDate: (iso: string | null | undefined): string => (iso ? dates.value.format(new Date(iso)) : ''),
    formatDay,
    /** A half-open period [start, end) as its first and last day. */
    formatPeriod: (start: string, end: string): string =>
      `${formatDay(start)} – ${formatDay(new Date(new Date(end).getTime() - DAY_MS).toISOString())}`,
    /** Minor units as major units with two decimals and the currency code. */
    money: (minor: number, currency: string): string => formatMoney(minor, currency, locale.value),
    count: (n: number): string => counts.value.format(n),
  }
}
