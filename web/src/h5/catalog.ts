// The catalogue, read once per visit (public, cacheable): scenarios' services and search.
import { api, unwrap, type Service } from '@api/client'
import { SCENARIOS } from './words'

let all: Promise<Service[]> | null = null

export function services(): Promise<Service[]> {
  all ??= unwrap(api.GET('/api/v1/services')).then((r) => r.items ?? []).catch((e) => {
    all = null
    throw e
  })
  return all
}

/** Services whose name, description or scenario matches every word of the query. */
export function searchServices(items: readonly Service[], query: string): Service[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean)
  if (!words.length) return []
  return items.filter((s) => {
    const hay = [s.name_zh, s.name_en, s.description_zh, s.conditions_zh, SCENARIOS[s.scenario]?.name, SCENARIOS[s.scenario]?.line]
      .join(' ')
      .toLowerCase()
    return words.every((w) => hay.includes(w))
  })
}
