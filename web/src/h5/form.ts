// The filing form, rendered from the service definition: empty values, the same checks the
// server makes (service/catalog.py, _answer) in plain Chinese, the answers as the API wants
// them, and the server's field errors mapped back onto the questions.
import type { FormField } from '@api/client'

export type Value = string | string[]
export type Values = Record<string, Value>

const MOBILE = /^1[3-9]\d{9}$/
const LANDLINE = /^0\d{2,3}-?\d{7,8}$/
const STRING_MAX: Record<string, number> = { string: 200, text: 4000 }
const PROVINCES = new Set(
  '11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82'.split(' '),
)

export function emptyValues(fields: readonly FormField[]): Values {
  const out: Values = {}
  for (const f of fields) out[f.code] = f.type === 'multi_choice' ? [] : ''
  return out
}

function isEmpty(v: Value | undefined): boolean {
  return v === undefined || (Array.isArray(v) ? v.length === 0 : v.trim() === '')
}

/** GB 11643 check character of the first 17 digits. */
export function idCardCheckChar(first17: string): string {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
  const sum = [...first17].reduce((s, c, i) => s + Number(c) * weights[i], 0)
  return '10X98765432'[sum % 11]
}

export function idCardProblem(raw: string, today = new Date()): string | null {
  const v = raw.trim().replace(/\s/g, '').toUpperCase()
  if (!/^\d{17}[\dX]$/.test(v)) return '身份证号应为 18 位（最后一位可能是 X）'
  if (!PROVINCES.has(v.slice(0, 2))) return '身份证号开头不对，请核对'
  const [y, m, d] = [Number(v.slice(6, 10)), Number(v.slice(10, 12)), Number(v.slice(12, 14))]
  const born = new Date(y, m - 1, d)
  if (born.getFullYear() !== y || born.getMonth() !== m - 1 || born.getDate() !== d) return '身份证号里的出生日期不对'
  if (y < 1900 || born > today) return '身份证号里的出生日期不对'
  if (idCardCheckChar(v.slice(0, 17)) !== v[17]) return '身份证号最后一位对不上，请核对'
  return null
}

export function phoneProblem(raw: string): string | null {
  const n = raw.replace(/[\s()]/g, '').replace(/^(\+86|0086)-?/, '')
  return MOBILE.test(n) || LANDLINE.test(n) ? null : '请填 11 位手机号，或带区号的座机（如 0551-12345678）'
}

/** What is wrong with one answer, in plain words, or null. */
export function fieldProblem(f: FormField, v: Value | undefined, today = new Date()): string | null {
  if (isEmpty(v)) return f.required ? (f.type.endsWith('choice') ? '请选择' : '请填写') : null
  const text = Array.isArray(v) ? '' : (v as string).trim()
  switch (f.type) {
    case 'string':
    case 'text': {
      const limit = f.max_length ?? STRING_MAX[f.type]
      return text.length > limit ? `最多 ${limit} 个字` : null
    }
    case 'number': {
      const n = Number(text)
      if (!Number.isFinite(n) || !/^-?\d+(\.\d+)?$/.test(text)) return '请填数字'
      if (f.min != null && n < f.min) return `不能小于 ${f.min}`
      if (f.max != null && n > f.max) return `不能大于 ${f.max}`
      return null
    }
    case 'date':
      return /^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(text)) ? null : '请选择日期'
    case 'datetime':
      return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(text) ? null : '请选择日期和时间'
    case 'single_choice':
      return (f.choices ?? []).some((c) => c.code === text) ? null : '请选择'
    case 'multi_choice': {
      const codes = (f.choices ?? []).map((c) => c.code)
      return (v as string[]).every((x) => codes.includes(x)) ? null : '请选择'
    }
    case 'phone':
      return phoneProblem(text)
    case 'id_card':
      return idCardProblem(text, today)
    default:
      return null
  }
}

export function validateValues(fields: readonly FormField[], values: Values, today = new Date()): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of fields) {
    const p = fieldProblem(f, values[f.code], today)
    if (p) out[f.code] = p
  }
  return out
}

/** A local date-time from an <input type="datetime-local"> as Beijing time with its offset. */
export function beijingTime(local: string): string {
  const m = local.match(/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(:\d{2})?/)
  return m ? `${m[1]}${m[2] ?? ':00'}+08:00` : local
}

/** The answers object of POST /cases: typed values, empty answers left out. */
export function toAnswers(fields: readonly FormField[], values: Values): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of fields) {
    const v = values[f.code]
    if (isEmpty(v)) continue
    if (f.type === 'multi_choice') out[f.code] = v
    else if (f.type === 'number') out[f.code] = Number((v as string).trim())
    else if (f.type === 'datetime') out[f.code] = beijingTime((v as string).trim())
    else if (f.type === 'id_card') out[f.code] = (v as string).replace(/\s/g, '').toUpperCase()
    else out[f.code] = (v as string).trim()
  }
  return out
}

// The server's English sentences for answers (service/catalog.py) in plain Chinese.
const SERVER_MESSAGES: Array<[RegExp, (m: RegExpMatchArray) => string]> = [
  [/^Required\.?$/, () => '请填写'],
  [/^Must be at least (\S+?)\.?$/, (m) => `不能小于 ${m[1]}`],
  [/^Must be at most (\S+?)\.?$/, (m) => `不能大于 ${m[1]}`],
  [/^At most (\d+) characters\.?$/, (m) => `最多 ${m[1]} 个字`],
  [/^Must be a number\.?$/, () => '请填数字'],
  [/^Must be a date/, () => '请选择日期'],
  [/^Must be an ISO 8601 date and time/, () => '请选择日期和时间'],
  [/^Must be one of|^Unknown choice|^Must be a list of choice/, () => '请从选项中选择'],
  [/^Choose at least one/, () => '请至少选一项'],
  [/phone number|mobile/i, () => '电话号码不对，请核对'],
  [/ID card|check digit|region code|birth date/i, () => '身份证号不对，请核对'],
  [/^This service has no such field/, () => '这一项已不再需要，请刷新页面'],
  [/end must be after start/, () => '结束时间要晚于开始时间'],
  [/Missing data for required field/, () => '请填写'],
]

export function plainMessage(message: string): string {
  for (const [re, f] of SERVER_MESSAGES) {
    const m = message.match(re)
    if (m) return f(m)
  }
  return message
}

/**
 * Split a 422's field errors (flattened "answers.x", "contact.phone", ...) into the form's
 * questions (by field code) and the other parts of the filing (by their path).
 */
export function mapServerErrors(errors: Record<string, string>): { answers: Record<string, string>; other: Record<string, string> } {
  const answers: Record<string, string> = {}
  const other: Record<string, string> = {}
  for (const [key, message] of Object.entries(errors)) {
    const text = message.split('；').map(plainMessage).join('；')
    if (key.startsWith('answers.')) answers[key.slice('answers.'.length)] = text
    else other[key] = text
  }
  return { answers, other }
}
