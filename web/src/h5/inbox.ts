// The count of unread notifications shown on the 消息 tab.
import { reactive } from 'vue'
import { api } from '@api/client'
import { hasSession } from '@api/session'

export const inbox = reactive({ unread: 0 })

export async function refreshUnread(): Promise<void> {
  if (!hasSession()) {
    inbox.unread = 0
    return
  }
  try {
    const { data } = await api.GET('/api/v1/me/notifications', { params: { query: { limit: 1 } } })
    if (data) inbox.unread = data.unread_count ?? 0
  } catch {
    /* offline: keep the last count */
  }
}
