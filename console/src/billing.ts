// Pure helpers for the billing and admin pages: money in integer minor units, usage against
// allowances, billing months. No Vue and no floats for money: amounts are split into major and
// minor parts with integer arithmetic and only the major part goes through Intl for grouping.

import type { Price, PriceModel, Tier } from './types'

/** Every currency billed today has two decimals (the server's invoices assume the same). */
const MINOR_DIGITS = 2
const MINOR_PER_MAJOR = 100

/**
 * Formats minor units as major units with two decimals and the currency code:
 * 124900, "CNY" → "1,249.00 CNY". Grouping follows the locale; the decimal point is always ".".
 */
export function formatMoney(minor: number, currency: string, locale = 'en'): string {
  if (!Number.isFinite(minor)) return ''
  const whole = Math.trunc(minor)
  const abs = Math.abs(whole)
  const cents = abs % MINOR_PER_MAJOR
  const major = (abs - cents) / MINOR_PER_MAJOR // exact: abs - cents is a multiple of 100
  const grouped = new Intl.NumberFormat(locale, { maximumFractionDigits: 0, useGrouping: true }).format(major)
  const sign = whole < 0 ? '-' : ''
  const amount = `${sign}${grouped}.${String(cents).padStart(MINOR_DIGITS, '0')}`
  return currency ? `${amount} ${currency}` : amount
}

const MONEY_PATTERN = /^(-)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$/

/**
 * Reads an amount typed in major units ("999", "999.5", "1,249.00", "-3.10") as minor units,
 * by string arithmetic; null when it is not an amount (or too large to count exactly).
 */
export function parseMoney(text: string): number | null {
  const match = MONEY_PATTERN.exec(text.trim())
  if (!match) return null
  const [, minus, whole = '', fraction = ''] = match
  const major = Number(whole.replaceAll(',', ''))
  const minor = major * MINOR_PER_MAJOR + Number(fraction.padEnd(MINOR_DIGITS, '0'))
  if (!Number.isSafeInteger(minor)) return null
  return minus && minor !== 0 ? -minor : minor
}

/** Minor units as the text a money input starts with: 99900 → "999.00" (no grouping, no code). */
export function moneyInput(minor: number): string {
  return formatMoney(minor, '', 'en').replaceAll(',', '')
}

/** Whole percent of the allowance used, rounded down; null when nothing is included. */
export function percentOfIncluded(quantity: number, included: number): number | null {
  if (included <= 0) return null
  return Math.floor((quantity * 100) / included)
}

export type UsageLevel = 'normal' | 'warning' | 'danger'

export const WARN_PERCENT = 80
export const DANGER_PERCENT = 100

/** Warning from 80 % of the allowance, danger from 100 %. */
export function usageLevel(percent: number | null): UsageLevel {
  if (percent === null) return 'normal'
  if (percent >= DANGER_PERCENT) return 'danger'
  if (percent >= WARN_PERCENT) return 'warning'
  return 'normal'
}

const time = (t: string | Date | number): number => (t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t))

/**
 * Usage at the end of the period if it goes on at the rate so far: quantity × period length ÷
 * elapsed time, rounded to a whole unit. Before the period starts nothing can be projected and
 * after it ends the quantity is final: both answer the quantity itself.
 */
export function projectUsage(quantity: number, start: string | Date, end: string | Date, now: string | Date | number): number {
  const from = time(start)
  const to = time(end)
  const at = time(now)
  const elapsed = at - from
  const length = to - from
  if (!(elapsed > 0) || !(length > 0) || at >= to) return quantity
  return Math.round((quantity * length) / elapsed)
}

/** The UTC month ("YYYY-MM") `months` before the one `now` falls in (0: its own month). */
export function monthBefore(now: Date, months = 1): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - months, 1))
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`
}

/** Whether text is a billing month, YYYY-MM. */
export function isMonth(text: string): boolean {
  return /^\d{4}-(0[1-9]|1[0-2])$/.test(text)
}

/**
 * A wall-clock time picked as "YYYY-MM-DD HH:mm:ss", read as UTC (billing periods are UTC days,
 * so an administrator anywhere picks the same instant): "2026-09-01 00:00:00" → "2026-09-01T00:00:00Z".
 * Null when the text is not such a time.
 */
export function utcFromPicker(text: string): string | null {
  const match = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)$/.exec(text.trim())
  if (!match) return null
  const [, day, clock = ''] = match
  const iso = `${day}T${clock.length === 5 ? `${clock}:00` : clock}Z`
  const parsed = new Date(iso)
  // Date accepts 2026-02-31 by rolling over; a real date formats back to itself.
  return Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 19) + 'Z' !== iso ? null : iso
}

/** Splits "code@version" (the admin tenants list's plan) into its parts. */
export function parsePlanRef(ref: string): { code: string; version: number } | null {
  const at = ref.lastIndexOf('@')
  if (at <= 0) return null
  const version = Number(ref.slice(at + 1))
  return Number.isInteger(version) && version > 0 ? { code: ref.slice(0, at), version } : null
}

/** The meters Switchboard charges by (billing/meters.go), in the order the price list shows them. */
export const METERS = [
  'interactions',
  'conversations',
  'voice_minutes',
  'seat_days_own',
  'seat_days_managed',
  'peak_seats',
  'bot_resolutions',
] as const

export const PRICE_MODELS: readonly PriceModel[] = ['per_unit', 'graduated', 'volume']

/** A price as typed in the plan form: money as text in major units, counts as numbers. */
export interface PriceDraft {
  meter: string
  model: PriceModel
  unitAmount: string
  included: number | null | undefined
  tiers: TierDraft[]
}

export interface TierDraft {
  upTo: number | null | undefined
  unitAmount: string
  flatAmount: string
}

/** Empty money text is zero; anything else must be an amount (null otherwise). */
function moneyOrZero(text: string): number | null {
  return text.trim() === '' ? 0 : parseMoney(text)
}

/**
 * The price the API takes, or null when an amount cannot be read. A per-unit price sends no
 * tiers and a tiered one no unit amount: the server refuses a per-unit price with tiers.
 */
export function priceFromDraft(draft: PriceDraft): Price | null {
  const included = Math.max(0, Math.trunc(draft.included ?? 0))
  if (draft.model === 'per_unit') {
    const unit = moneyOrZero(draft.unitAmount)
    return unit === null ? null : { meter: draft.meter, model: draft.model, unit_amount: unit, included }
  }
  const tiers: Tier[] = []
  for (const tier of draft.tiers) {
    const unit = moneyOrZero(tier.unitAmount)
    const flat = moneyOrZero(tier.flatAmount)
    if (unit === null || flat === null) return null
    tiers.push({ up_to: Math.max(0, Math.trunc(tier.upTo ?? 0)), unit_amount: unit, flat_amount: flat })
  }
  return { meter: draft.meter, model: draft.model, unit_amount: 0, included, tiers }
}
