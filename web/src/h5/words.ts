// Plain words for residents: the case's state, each step of its history, the scenarios' icons
// and one-line descriptions, and the icon of each service (the catalogue's `icon` key).

export const SCENARIOS: Record<string, { name: string; line: string; icon: string }> = {
  elderly: { name: '养老服务', line: '上门探访、居家服务、高龄津贴、紧急求助', icon: 'friends-o' },
  children: { name: '儿童关爱', line: '儿童保护、困境儿童保障、心理疏导', icon: 'smile-o' },
  community: { name: '社区服务', line: '社区诉求、邻里调解、场地预约', icon: 'home-o' },
  social_aid: { name: '社会救助', line: '低保、临时救助、特困供养', icon: 'gift-o' },
  social_org: { name: '社会组织', line: '登记咨询、志愿公益报名、投诉举报', icon: 'cluster-o' },
  social_work: { name: '社工服务', line: '预约社工、志愿服务证明', icon: 'service-o' },
  funeral: { name: '殡葬服务', line: '殡仪预约、殡葬补贴、生态安葬', icon: 'flower-o' },
}

// The catalogue's icon keys -> Vant icon names (the mini program maps the same keys to its own pictures).
const ICONS: Record<string, string> = {
  'home-visit': 'friends-o',
  'home-care': 'home-o',
  emergency: 'warning-o',
  allowance: 'balance-o',
  'child-protect': 'shield-o',
  'child-care': 'smile-o',
  counselling: 'chat-o',
  community: 'wap-home-o',
  mediation: 'comment-o',
  facility: 'calendar-o',
  dibao: 'gift-o',
  relief: 'gift-card-o',
  support: 'like-o',
  org: 'cluster-o',
  volunteer: 'flag-o',
  complaint: 'warn-o',
  'social-work': 'service-o',
  certificate: 'certificate',
  funeral: 'flower-o',
  subsidy: 'balance-list-o',
  'eco-burial': 'flower-o',
}

export function serviceIcon(key: string | undefined): string {
  return (key && ICONS[key]) || 'apps-o'
}

export const STATE: Record<string, { text: string; tag: 'primary' | 'success' | 'warning' | 'danger' | 'default' }> = {
  unrouted: { text: '等待分派', tag: 'warning' },
  dispatched: { text: '等待社工站接手', tag: 'primary' },
  accepted: { text: '社工站已接手', tag: 'primary' },
  in_progress: { text: '正在办理', tag: 'primary' },
  resolved: { text: '已办完，请评价', tag: 'success' },
  closed: { text: '已完成', tag: 'default' },
  cancelled: { text: '已撤回', tag: 'default' },
  rejected: { text: '不予受理', tag: 'danger' },
}

export interface Step {
  action?: string
  to_state?: string
  from_state?: string | null
  note?: string | null
  data?: Record<string, unknown>
  at?: string
}

/** One step of the case's history as a sentence a resident understands. */
export function stepText(step: Step, stationName?: string | null): string {
  const note = step.note ? `：${step.note}` : ''
  const d = step.data ?? {}
  const station = (typeof d.station_name === 'string' && d.station_name) || stationName || '社工站'
  switch (step.action) {
    case 'submit':
    case 'create':
      return step.to_state === 'unrouted' ? '您提交了申请，正在为您安排社工站' : `您提交了申请，已交给${station}`
    case 'dispatch':
    case 'route':
    case 'routed':
      return `已交给${station}办理`
    case 'accept':
      return '社工站已接手，正在安排'
    case 'assign':
      return '已安排工作人员负责'
    case 'start':
      return '工作人员开始办理'
    case 'schedule': {
      const when = typeof d.scheduled_at === 'string' ? `：${formatTime(d.scheduled_at)}` : ''
      return `已约好时间${when}`
    }
    case 'note':
      return `办理进展${note}`
    case 'return':
      return '原社工站不负责这项事，已转给其他社工站'
    case 'request_extension':
      return '社工站申请多一些办理时间'
    case 'approve_extension':
      return '办理时间已延长'
    case 'deny_extension':
      return '延长办理时间的申请未获批准'
    case 'resolve':
      return `已办完${note}`
    case 'reopen':
      return `您要求重新办理${note}`
    case 'rate':
      return '您已评价'
    case 'cancel':
      return '您撤回了申请'
    case 'reject':
      return `不予受理${note}`
    case 'urge':
      return '上级已催促尽快办理'
    case 'overdue':
      return '办理超时，上级正在督办'
    case 'close':
    case 'auto_close':
      return '已完成归档'
    default:
      return step.to_state ? STATE[step.to_state]?.text ?? '状态更新' : '状态更新'
  }
}

const TIME = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai',
  month: 'long',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
})

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return ''
  const t = new Date(iso)
  return Number.isNaN(t.getTime()) ? '' : TIME.format(t)
}

/** "还有 2 天" / "今天" / "已超时" for a due time, for residents. */
export function dueText(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return ''
  const ms = new Date(iso).getTime() - now
  if (ms < 0) return '已超时，上级会督办'
  const hours = Math.floor(ms / 3_600_000)
  if (hours < 24) return hours < 1 ? '1 小时内' : `还有 ${hours} 小时`
  return `还有 ${Math.floor(hours / 24)} 天`
}
