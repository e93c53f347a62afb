import type { FormField, Service } from '@api/client'

export interface AnswerRow { code: string; label: string; value: string }

function one(field: FormField | undefined, v: unknown): string {
  if (v === null || v === undefined || v === '') return '—'
  if (field?.choices?.length) {
    const name = (c: unknown) => field.choices?.find((x) => x.code === c)?.label_zh ?? String(c)
    return Array.isArray(v) ? v.map(name).join('、') : name(v)
  }
  if (typeof v === 'boolean') return v ? '是' : '否'
  if (Array.isArray(v)) return v.join('、')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

/** The answers in the service's field order, with the field labels and choice labels in Chinese. */
export function answerRows(service: Service | null, answers: Record<string, unknown> | undefined): AnswerRow[] {
  const given = answers ?? {}
  const fields = service?.fields ?? []
  const rows: AnswerRow[] = fields
    .filter((f) => f.code in given)
    .map((f) => ({ code: f.code, label: f.label_zh, value: one(f, given[f.code]) }))
  for (const [code, v] of Object.entries(given)) {
    if (!fields.some((f) => f.code === code)) rows.push({ code, label: code, value: one(undefined, v) })
  }
  return rows
}
