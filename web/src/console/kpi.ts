import type { KpiGroup } from '@api/client'

export const FIGURES = {
  total: { label: '工单总数', rate: false },
  response_rate: { label: '及时签收率', rate: true },
  on_time_resolution_rate: { label: '按期办结率', rate: true },
  resolution_rate: { label: '办结率', rate: true },
  satisfaction_rate: { label: '满意率', rate: true },
  overdue: { label: '超期件数', rate: false },
} as const
export type Figure = keyof typeof FIGURES

export function figure(g: KpiGroup | undefined, f: Figure): number | null {
  if (!g) return null
  const v = g[f]
  return typeof v === 'number' ? v : null
}

export function showFigure(v: number | null | undefined, f: Figure): string {
  if (v === null || v === undefined) return '—'
  return FIGURES[f].rate ? `${(v * 100).toFixed(1)}%` : String(v)
}

/** A CSV (with a BOM, so spreadsheet programs read the Chinese) of rows of cells. */
export function toCsv(rows: Array<Array<string | number | null | undefined>>): string {
  const cell = (v: string | number | null | undefined) => {
    const s = v === null || v === undefined ? '' : String(v)
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  }
  return '\ufeff' + rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n'
}

export function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }))
  const a = document.createElement('a')
  a.href = url
  a.download = name
  a.click()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}
