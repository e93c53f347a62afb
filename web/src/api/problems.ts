// RFC 9457 problem documents as readable Chinese: a message for the whole answer, and
// one per form field (the `errors` member of 422 answers).

const CODES: Record<string, string> = {
  validation_failed: '有些内容没填或格式不对，请看标红的项。',
  invalid_credentials: '用户名或密码不对。',
  account_disabled: '该账号已停用，请联系管理员。',
  account_locked: '尝试次数过多，账号暂时锁定，请稍后再试。',
  authentication_required: '请先登录。',
  token_expired: '登录已过期，请重新登录。',
  invalid_token: '登录状态无效，请重新登录。',
  token_revoked: '已退出登录，请重新登录。',
  refresh_token_expired: '登录已过期，请重新登录。',
  refresh_token_revoked: '登录已失效，请重新登录。',
  refresh_token_reused: '登录已失效，请重新登录。',
  invalid_refresh_token: '登录已失效，请重新登录。',
  forbidden: '没有权限执行此操作。',
  role_not_allowed: '您的角色不能执行此操作。',
  staff_only: '仅限工作人员。',
  admin_only: '仅限管理员。',
  outside_your_area: '该工单不在您的管辖范围内。',
  division_outside_scope: '超出您的管辖区域。',
  station_outside_division: '该社工站不在您的管辖区域内。',
  case_not_found: '找不到该工单。',
  case_changed: '工单已被他人更新，请刷新后再试。',
  invalid_status: '工单当前状态不允许此操作，请刷新。',
  unknown_action: '不支持的操作。',
  illegal_transition: '工单当前状态不允许此操作，请刷新后再看。',
  action_not_allowed_for_role: '您的角色不能执行此操作。',
  not_your_case: '这不是您负责的工单。',
  extension_pending: '已有延期申请待审批。',
  no_extension_requested: '没有待审批的延期申请。',
  reopen_window_passed: '已超过可重办期限。',
  station_not_found: '找不到该社工站。',
  staff_not_found: '找不到该工作人员。',
  username_taken: '用户名已被使用。',
  station_code_taken: '站点编码已被使用。',
  client_not_found: '找不到该客户端。',
  cannot_disable_self: '不能停用自己的账号。',
  upload_not_found: '找不到上传的照片。',
  upload_too_large: '照片太大。',
  unknown_photo: '照片未找到，请重新上传。',
  unsupported_upload_type: '只能上传图片（JPEG、PNG、WebP、GIF 或 HEIC）。',
  assignee_not_at_station: '所选人员不是本站在岗工作人员。',
  station_outside_scope: '只能查看本站的工作人员。',
  invalid_import: '导入文件有错误，未写入任何数据。',
  invalid_station: '社工站信息有误，请看标红的项。',
  import_conflict: '导入期间有社工站被修改，未写入任何数据，请重新预览。',
  payload_too_large: '提交的内容太大。',
  unsupported_media_type: '文件类型不支持。',
  rate_limited: '操作太频繁，请稍后再试。',
  database_unavailable: '服务暂时不可用，请稍后再试。',
  database_busy: '服务繁忙，请稍后再试。',
  cache_unavailable: '服务暂时不可用，请稍后再试。',
  request_timeout: '请求超时，请重试。',
  internal_error: '服务器出错，请稍后再试。',
  not_found: '找不到。',
  network_error: '网络连接失败，请检查网络后重试。',
  // 志愿服务 volunteer service
  not_a_volunteer: '请先注册成为志愿者。',
  volunteer_exists: '这个身份证号已经注册过志愿者。',
  invalid_id_card: '身份证号不对，请核对。',
  invalid_volunteer: '有些内容填得不对，请看标红的项。',
  already_signed_up: '您已经报名了这个活动。',
  activity_not_open: '这个活动已结束或已取消，不能再报名。',
  activity_not_found: '找不到这个活动。',
  activity_full: '名额已满。',
  cancellation_too_late: '活动开始前 2 小时内不能在手机上取消，请联系组织方。',
  signup_not_active: '这个报名已经取消或结束了。',
  checkin_code_invalid: '签到码不对，请看清屏幕上的码再试。',
  checkin_code_expired: '签到码已过期，屏幕上的码每分钟更新，请用新的码。',
  checkin_code_used: '这个码您已经用过了，请等屏幕换新码后再扫。',
  checkin_code_tries: '输错太多次，请扫二维码，或过几分钟再试。',
  not_confirmed: '您还不是这个活动已确认的志愿者，不能签到。',
  outside_activity_time: '现在不在签到时间内（开始前 1 小时到结束）。',
  already_checked_in: '您已经签到过了。',
  not_checked_in: '请先签到，再签退。',
  attendance_overlap: '同一时间您在另一个活动有签到记录。',
  attendance_changed: '记录刚被更新，请再试一次。',
  attendance_not_found: '找不到这条服务记录。',
  certificate_not_found: '找不到这份证明。',
}

// marshmallow's English messages, most common first; anything else is shown as sent.
const FIELD_MESSAGES: Array<[RegExp, (m: RegExpMatchArray) => string]> = [
  [/^Missing data for required field\.?$/, () => '必填'],
  [/^Unknown upload id /, () => '照片未找到（须是您本人上传的照片），请重新上传'],
  [/^Field may not be null\.?$/, () => '必填'],
  [/^Shorter than minimum length (\d+)\.?$/, (m) => (m[1] === '1' ? '不能为空' : `至少 ${m[1]} 个字`)],
  [/^Longer than maximum length (\d+)\.?$/, (m) => `最多 ${m[1]} 个字`],
  [/^Length must be between (\d+) and (\d+)\.?$/, (m) => `长度须在 ${m[1]} 到 ${m[2]} 之间`],
  [/^Not a valid datetime\.?$/, () => '日期时间格式不对'],
  [/^Not a valid date\.?$/, () => '日期格式不对'],
  [/^Not a valid (integer|number)\.?$/, () => '请填数字'],
  [/^Not a valid string\.?$/, () => '请填文字'],
  [/^Not a valid boolean\.?$/, () => '请选择是或否'],
  [/^Must be greater than or equal to (\S+?)( and less than or equal to (\S+?))?\.?$/, (m) => (m[3] ? `须在 ${m[1]} 到 ${m[3]} 之间` : `不能小于 ${m[1]}`)],
  [/^Must be less than or equal to (\S+?)\.?$/, (m) => `不能大于 ${m[1]}`],
  [/^Must be one of: (.*)\.?$/, (m) => `须为以下之一：${m[1]}`],
  [/^Unknown field\.?$/, () => '不认识的字段'],
  [/^Required\.?$/, () => '必填'],
  [/^String does not match expected pattern\.?$/, () => '格式不对'],
  [/^Must be a number\.?$/, () => '须为数字'],
  [/^Must be a 9-digit township division code/, () => '须为 9 位乡镇区划代码（或以 000 结尾的 12 位）'],
  [/^Must be a whole number of open cases/, () => '须为整数（可容纳的在办件数），留空为不限'],
  [/^The row has more values than the header\.?$/, () => '这一行的值比表头多'],
  [/^Code (\S+) appears twice in the file\.?$/, (m) => `编码 ${m[1]} 在文件中出现了两次`],
  [/^Cannot be removed\.?$/, () => '不能删除'],
  [/must be in the future|in the past/i, () => '时间须晚于现在'],
]

export function fieldMessage(message: string): string {
  for (const [re, f] of FIELD_MESSAGES) {
    const m = message.match(re)
    if (m) return f(m)
  }
  return message
}

/** Flatten `errors` ({field: [msg] | {nested...}}) into {"a.b": "中文"}. */
export function flattenErrors(errors: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {}
  if (!errors || typeof errors !== 'object') return out
  for (const [key, value] of Object.entries(errors as Record<string, unknown>)) {
    const name = prefix ? `${prefix}.${key}` : key
    if (Array.isArray(value)) {
      const texts = value.filter((v) => typeof v === 'string') as string[]
      if (texts.length) out[name] = texts.map(fieldMessage).join('；')
      value.forEach((v, i) => {
        if (v && typeof v === 'object') Object.assign(out, flattenErrors(v, `${name}.${i}`))
      })
    } else if (typeof value === 'string') {
      out[name] = fieldMessage(value)
    } else if (value && typeof value === 'object') {
      Object.assign(out, flattenErrors(value, name))
    }
  }
  return out
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
    public fields: Record<string, string> = {},
  ) {
    super(CODES[code] ?? detail)
  }

  static from(status: number, body: unknown): ApiError {
    const p = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
    const code = typeof p.code === 'string' ? p.code : status === 0 ? 'network_error' : `http_${status}`
    const detail = typeof p.detail === 'string' ? p.detail : `HTTP ${status}`
    return new ApiError(status, code, detail, flattenErrors(p.errors))
  }

  /** The message for the user: the Chinese for the code, else the server's sentence. */
  get readable(): string {
    return this.message
  }
}

export function readable(err: unknown): string {
  if (err instanceof ApiError) return err.readable
  if (err instanceof TypeError) return CODES.network_error
  return err instanceof Error ? err.message : String(err)
}
