import { describe, expect, it } from 'vitest'
import {
  formatMoney,
  isMonth,
  monthBefore,
  moneyInput,
  parseMoney,
  parsePlanRef,
  percentOfIncluded,
  priceFromDraft,
  projectUsage,
  usageLevel,
  utcFromPicker,
} from '../src/billing'

describe('formatMoney', () => {
  it('shows minor units as major units with two decimals and the currency', () => {
    expect(formatMoney(124900, 'CNY')).toBe('1,249.00 CNY')
    expect(formatMoney(124900, 'CNY', 'zh-CN')).toBe('1,249.00 CNY')
    expect(formatMoney(5, 'USD')).toBe('0.05 USD')
    expect(formatMoney(0, 'EUR')).toBe('0.00 EUR')
    expect(formatMoney(100, 'CNY')).toBe('1.00 CNY')
    expect(formatMoney(123456789012, 'CNY')).toBe('1,234,567,890.12 CNY')
  })

  it('keeps the sign of credits and refunds, and can leave the currency out', () => {
    expect(formatMoney(-1050, 'CNY')).toBe('-10.50 CNY')
    expect(formatMoney(-5, 'CNY')).toBe('-0.05 CNY')
    expect(formatMoney(99900, '')).toBe('999.00')
  })

  it('is exact for the largest safe integer', () => {
    expect(formatMoney(Number.MAX_SAFE_INTEGER, 'CNY')).toBe('90,071,992,547,409.91 CNY')
  })
})

describe('parseMoney', () => {
  it('reads major units as minor units without floating point', () => {
    expect(parseMoney('999.00')).toBe(99900)
    expect(parseMoney('999')).toBe(99900)
    expect(parseMoney('0.5')).toBe(50)
    expect(parseMoney(' 1,249.05 ')).toBe(124905)
    // 0.1 + 0.2 style traps: string arithmetic, not multiplication of a float.
    expect(parseMoney('0.29')).toBe(29)
    expect(parseMoney('1.13')).toBe(113)
    expect(parseMoney('-3.10')).toBe(-310)
    expect(parseMoney('-0')).toBe(0)
  })

  it('refuses what is not an amount', () => {
    for (const bad of ['', 'abc', '1.234', '1,23', '1.', '.5', '12,34.00', '1e3', '¥5', '99999999999999999']) {
      expect(parseMoney(bad), bad).toBeNull()
    }
  })

  it('round-trips with moneyInput', () => {
    expect(moneyInput(124900)).toBe('1249.00')
    expect(parseMoney(moneyInput(124905))).toBe(124905)
  })
})

describe('allowance use', () => {
  it('is a whole percent, rounded down, and null without an allowance', () => {
    expect(percentOfIncluded(0, 1000)).toBe(0)
    expect(percentOfIncluded(799, 1000)).toBe(79)
    expect(percentOfIncluded(800, 1000)).toBe(80)
    expect(percentOfIncluded(1500, 1000)).toBe(150)
    expect(percentOfIncluded(1, 3)).toBe(33)
    expect(percentOfIncluded(10, 0)).toBeNull()
  })

  it('warns from 80 % and is in danger from 100 %', () => {
    expect(usageLevel(null)).toBe('normal')
    expect(usageLevel(79)).toBe('normal')
    expect(usageLevel(80)).toBe('warning')
    expect(usageLevel(99)).toBe('warning')
    expect(usageLevel(100)).toBe('danger')
    expect(usageLevel(250)).toBe('danger')
  })
})

describe('projectUsage', () => {
  const start = '2026-11-01T00:00:00Z'
  const end = '2026-12-01T00:00:00Z' // 30 days

  it('scales the quantity so far to the whole period', () => {
    expect(projectUsage(100, start, end, '2026-11-11T00:00:00Z')).toBe(300) // a third of the period
    expect(projectUsage(100, start, end, '2026-11-16T00:00:00Z')).toBe(200) // half
    expect(projectUsage(7, start, end, '2026-11-04T00:00:00Z')).toBe(70)
  })

  it('answers an integer', () => {
    const p = projectUsage(10, start, end, '2026-11-08T00:00:00Z') // 10 × 30 / 7 = 42.86
    expect(p).toBe(43)
    expect(Number.isInteger(p)).toBe(true)
  })

  it('takes Date and millisecond inputs too', () => {
    expect(projectUsage(100, new Date(start), new Date(end), Date.parse('2026-11-16T00:00:00Z'))).toBe(200)
  })

  it('does not project before the period starts or after it ends', () => {
    expect(projectUsage(5, start, end, start)).toBe(5)
    expect(projectUsage(5, start, end, '2026-10-31T00:00:00Z')).toBe(5)
    expect(projectUsage(5, start, end, end)).toBe(5)
    expect(projectUsage(5, start, end, '2027-01-01T00:00:00Z')).toBe(5)
    expect(projectUsage(0, start, end, '2026-11-16T00:00:00Z')).toBe(0)
  })
})

describe('months and times', () => {
  it('names earlier months in UTC, across a year boundary', () => {
    expect(monthBefore(new Date('2026-11-23T12:00:00Z'))).toBe('2026-10')
    expect(monthBefore(new Date('2026-11-23T12:00:00Z'), 0)).toBe('2026-11')
    expect(monthBefore(new Date('2026-02-10T00:00:00Z'), 3)).toBe('2025-11')
    expect(monthBefore(new Date('2026-03-31T23:00:00Z'), 1)).toBe('2026-02')
  })

  it('checks a billing month', () => {
    expect(isMonth('2026-09')).toBe(true)
    expect(isMonth('2026-9')).toBe(false)
    expect(isMonth('2026-13')).toBe(false)
    expect(isMonth('')).toBe(false)
  })

  it('reads a picked wall-clock time as UTC', () => {
    expect(utcFromPicker('2026-09-01 00:00:00')).toBe('2026-09-01T00:00:00Z')
    expect(utcFromPicker('2026-09-01T13:45')).toBe('2026-09-01T13:45:00Z')
    expect(utcFromPicker('2026-02-31 00:00:00')).toBeNull()
    expect(utcFromPicker('yesterday')).toBeNull()
  })

  it('splits a code@version plan reference', () => {
    expect(parsePlanRef('growth@3')).toEqual({ code: 'growth', version: 3 })
    expect(parsePlanRef('')).toBeNull()
    expect(parsePlanRef('growth')).toBeNull()
    expect(parsePlanRef('growth@x')).toBeNull()
  })
})

describe('priceFromDraft', () => {
  it('sends a per-unit price in minor units without tiers', () => {
    expect(priceFromDraft({ meter: 'interactions', model: 'per_unit', unitAmount: '0.50', included: 1000, tiers: [{ upTo: 5, unitAmount: '1', flatAmount: '' }] })).toEqual({
      meter: 'interactions',
      model: 'per_unit',
      unit_amount: 50,
      included: 1000,
    })
  })

  it('sends tiers (and no unit amount) for a tiered price', () => {
    expect(
      priceFromDraft({
        meter: 'voice_minutes',
        model: 'graduated',
        unitAmount: '9.99',
        included: null,
        tiers: [
          { upTo: 1000, unitAmount: '0.20', flatAmount: '' },
          { upTo: 0, unitAmount: '0.10', flatAmount: '5.00' },
        ],
      }),
    ).toEqual({
      meter: 'voice_minutes',
      model: 'graduated',
      unit_amount: 0,
      included: 0,
      tiers: [
        { up_to: 1000, unit_amount: 20, flat_amount: 0 },
        { up_to: 0, unit_amount: 10, flat_amount: 500 },
      ],
    })
  })

  it('answers null when an amount cannot be read', () => {
    expect(priceFromDraft({ meter: 'interactions', model: 'per_unit', unitAmount: '0.505', included: 0, tiers: [] })).toBeNull()
    expect(priceFromDraft({ meter: 'interactions', model: 'volume', unitAmount: '', included: 0, tiers: [{ upTo: 0, unitAmount: 'x', flatAmount: '' }] })).toBeNull()
  })
})
