// The case actions a person can take from the console: the endpoint of each, and the
// fields its dialog asks for. The server says which are allowed (`allowed_actions`).

export type FieldKind = 'text' | 'textarea' | 'datetime' | 'days' | 'station' | 'staff' | 'photos'

export interface ActionField {
  name: string
  label: string
  kind: FieldKind
  required: boolean
  placeholder?: string
}

export interface ActionSpec {
  title: string
  path: string
  type: 'primary' | 'success' | 'warning' | 'danger' | 'info' | 'default'
  fields: ActionField[]
  confirm?: string
}

const note = (label = '备注'): ActionField => ({ name: 'note', label, kind: 'textarea', required: false })
const reason = (label: string): ActionField => ({ name: 'reason', label, kind: 'textarea', required: true })

export const ACTIONS: Record<string, ActionSpec> = {
  accept: { title: '签收', path: 'accept', type: 'primary', fields: [note()] },
  start: { title: '开始办理', path: 'start', type: 'primary', fields: [note()] },
  schedule: {
    title: '预约上门',
    path: 'schedule',
    type: 'default',
    fields: [{ name: 'scheduled_at', label: '预约时间', kind: 'datetime', required: true }, note()],
  },
  note: { title: '记录进展', path: 'note', type: 'default', fields: [{ name: 'text', label: '进展情况', kind: 'textarea', required: true }] },
  request_extension: {
    title: '申请延期',
    path: 'extension-request',
    type: 'warning',
    fields: [
      { name: 'extra_days', label: '延长工作日', kind: 'days', required: true },
      reason('延期理由'),
    ],
  },
  approve_extension: { title: '批准延期', path: 'extension-approve', type: 'success', fields: [note()] },
  deny_extension: { title: '驳回延期', path: 'extension-deny', type: 'warning', fields: [reason('驳回理由')] },
  resolve: {
    title: '办结',
    path: 'resolve',
    type: 'success',
    fields: [
      { name: 'result', label: '办理结果', kind: 'textarea', required: true, placeholder: '写明为居民做了什么、结果如何' },
      { name: 'photos', label: '现场照片（可选，最多 9 张）', kind: 'photos', required: false },
    ],
  },
  return: { title: '退单', path: 'return', type: 'danger', fields: [reason('退单理由（为什么不属于本站）')] },
  reject: { title: '不予受理', path: 'reject', type: 'danger', fields: [reason('不予受理的理由（居民会看到）')] },
  assign: {
    title: '分派',
    path: 'assign',
    type: 'primary',
    fields: [{ name: 'assignee_id', label: '工作人员', kind: 'staff', required: true }, note()],
  },
  urge: { title: '催办', path: 'urge', type: 'warning', fields: [note('催办说明')] },
  dispatch: {
    title: '人工派单',
    path: 'dispatch',
    type: 'primary',
    fields: [{ name: 'station_id', label: '派往社工站', kind: 'station', required: true }, note()],
  },
  reopen: { title: '重办', path: 'reopen', type: 'warning', fields: [reason('重办理由')] },
}

/** Actions the console offers, in the order the server listed them (unknown ones are skipped). */
export function offered(allowed: readonly string[] | undefined): string[] {
  return (allowed ?? []).filter((a) => a in ACTIONS)
}

/** The request body for an action from the dialog's values: empty optional fields left out. */
export function bodyFor(spec: ActionSpec, values: Record<string, unknown>, version?: number): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  if (version) body.expected_version = version
  for (const f of spec.fields) {
    const v = values[f.name]
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) continue
    body[f.name] = typeof v === 'string' ? v.trim() : v
  }
  return body
}

/** Client-side check before sending: the Chinese message per missing required field. */
export function missing(spec: ActionSpec, values: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const f of spec.fields) {
    const v = values[f.name]
    if (f.required && (v === undefined || v === null || (typeof v === 'string' && !v.trim()))) out[f.name] = `请填写${f.label}`
  }
  return out
}
