// Chinese names for the API's codes (statuses, scenarios, actions, roles).

export const STATUS: Record<string, string> = {
  unrouted: '待派单',
  dispatched: '待签收',
  accepted: '已签收',
  in_progress: '办理中',
  resolved: '已办结',
  closed: '已关闭',
  cancelled: '已撤回',
  rejected: '不予受理',
}

export const OPEN_STATUSES = ['unrouted', 'dispatched', 'accepted', 'in_progress'] as const

export const SCENARIO: Record<string, string> = {
  elderly: '互联网+养老',
  children: '互联网+儿童',
  community: '互联网+社区',
  social_aid: '互联网+社会救助',
  social_org: '互联网+社会组织',
  social_work: '互联网+专业社会工作服务',
  funeral: '互联网+殡葬服务',
}

export const ROLE: Record<string, string> = {
  worker: '社工站工作人员',
  station_head: '站长',
  supervisor: '民政局督办',
  admin: '管理员',
  resident: '居民',
}

export const ACTION: Record<string, string> = {
  accept: '签收',
  return: '退单',
  assign: '分派',
  start: '开始办理',
  schedule: '预约',
  note: '记录进展',
  request_extension: '申请延期',
  'extension-request': '申请延期',
  approve_extension: '批准延期',
  'extension-approve': '批准延期',
  deny_extension: '驳回延期',
  'extension-deny': '驳回延期',
  resolve: '办结',
  reopen: '重办',
  rate: '评价',
  cancel: '撤回',
  reject: '不予受理',
  urge: '催办',
  dispatch: '人工派单',
  submit: '提交',
  create: '提交',
  overdue: '超期',
  close: '关闭',
  route: '派单',
  routed: '派单',
}

export const EVENT: Record<string, string> = {
  'case.created': '新工单',
  'case.dispatched': '新派来的工单',
  'case.returned': '退回的工单',
  'case.assigned': '分派给您的工单',
  'case.urged': '催办',
  'case.overdue': '超期工单',
  'case.unrouted': '待人工派单的工单',
  'case.extension_requested': '延期申请',
  'visit.due': '探访到期',
}

export function label(map: Record<string, string>, code: string | null | undefined): string {
  if (!code) return ''
  return map[code] ?? code
}
