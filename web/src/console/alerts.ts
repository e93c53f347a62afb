// Words and small calculations of the alert board (紧急告警): labels with English alongside,
// the time since an alert, and the escalation step reached.

export const ALERT_TYPE: Record<string, string> = {
  sos: '紧急呼叫 SOS',
  fall: '跌倒 Fall',
  smoke: '烟感 Smoke',
  no_activity: '无活动 No activity',
  low_battery: '低电量 Low battery',
  offline: '离线 Offline',
}

export const ESCALATION_TO: Record<string, string> = {
  station_head: '站长 Station head',
  county: '县民政局 County',
}

export const MAINTENANCE_KIND: Record<string, string> = {
  low_battery: '低电量 Low battery',
  offline: '离线 Offline',
}

/** "12分05秒" since an instant (hours when longer), for the time an alert has been waiting. */
export function elapsed(iso: string | null | undefined, now: number): string {
  if (!iso) return ''
  const t = new Date(iso).getTime()
  if (Number.isNaN(t)) return ''
  const s = Math.max(0, Math.floor((now - t) / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  const pad = (n: number) => String(n).padStart(2, '0')
  return h > 0 ? `${h}小时${pad(m)}分` : `${m}分${pad(sec)}秒`
}

export interface EscalationLike {
  level?: number
  done?: boolean
  reason?: string | null
  history?: { level?: number; to?: string; stopped?: string }[]
}

/** The step of the escalation ladder reached, in words ("未升级 Not escalated", "第1步 站长 Station head"). */
export function escalationStep(esc: EscalationLike | null | undefined): string {
  if (!esc || !esc.level) return '未升级 Not escalated'
  const step = [...(esc.history ?? [])].reverse().find((h) => h.to)
  const to = step?.to ? ESCALATION_TO[step.to] ?? step.to : ''
  return `第${esc.level}步 ${to}`.trim()
}
