import { describe, expect, it } from 'vitest'
import en from '../src/locales/en'
import zhCN from '../src/locales/zh-CN'

/** Every leaf key as a dotted path, e.g. "auth.loginTitle". */
function keys(messages: object, prefix = ''): string[] {
  return Object.entries(messages).flatMap(([key, value]) =>
    typeof value === 'object' && value !== null ? keys(value as object, `${prefix}${key}.`) : [`${prefix}${key}`],
  )
}

function leaves(messages: object, prefix = ''): [string, unknown][] {
  return Object.entries(messages).flatMap(([key, value]): [string, unknown][] =>
    typeof value === 'object' && value !== null ? leaves(value as object, `${prefix}${key}.`) : [[`${prefix}${key}`, value]],
  )
}

describe('locale messages', () => {
  it('en and zh-CN have exactly the same keys', () => {
    expect(keys(zhCN).sort()).toEqual(keys(en).sort())
  })

  it('has no empty message in either language', () => {
    for (const messages of [en, zhCN]) {
      for (const [key, value] of leaves(messages)) {
        expect(typeof value, key).toBe('string')
        expect((value as string).trim(), key).not.toBe('')
      }
    }
  })

  it('uses the same placeholders in both languages', () => {
    const placeholders = (s: unknown) => [...String(s).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
    const zh = new Map(leaves(zhCN))
    for (const [key, value] of leaves(en)) {
      expect(placeholders(zh.get(key)), key).toEqual(placeholders(value))
    }
  })
})
