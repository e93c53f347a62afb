// The words the console shows for each scope an API client may be granted. The keys are the
// API's own list (ClientCreate.scopes, generated from the server's CLIENT_SCOPES): a scope the
// server adds without a label here fails the type check (tests/web/test_web_project.py).
import type { Schemas } from '@api/client'

export type ClientScope = Schemas['ClientCreate']['scopes'][number]

export const SCOPE_LABELS: Record<ClientScope, string> = {
  'cases:read': '读取工单',
  'cases:write': '提交工单',
  'stations:read': '读取社工站',
  'visits:read': '接收探访事件',
  'visits:write': '提交外呼探访结果',
  'alerts:write': '上报设备告警',
  'volunteers:read': '接收志愿服务事件',
  'webhooks:manage': '管理事件订阅',
  open311: 'Open311 接口',
}

/** A scope in the console's words (an unknown one as the API spells it). */
export function scopeLabel(scope: string): string {
  return (SCOPE_LABELS as Record<string, string>)[scope] ?? scope
}
