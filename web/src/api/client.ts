// The typed API client: openapi-fetch over the types generated from /api/v1/openapi.json
// (schema.d.ts; `make api-types` regenerates it, a test fails when it is stale).
import createClient from 'openapi-fetch'
import type { components, paths } from './schema'
import { absolute, makeAuthFetch } from './session'
import { ApiError } from './problems'

export type Schemas = components['schemas']
export type Case = Schemas['Case']
export type CaseSummary = NonNullable<Schemas['CasePage']['items']>[number]
export type Service = Schemas['Service']
export type FormField = Schemas['FormField']
export type Me = Schemas['Me']
export type Kpi = Schemas['Kpi']
export type KpiGroup = Schemas['KpiGroup']
export type Station = Schemas['Station']
export type Staff = Schemas['Staff']
/** The indicator codes of the plan (GET /api/v1/stats/plan), as the map's breakdown accepts them. */
export type PlanIndicatorCode = NonNullable<
  paths['/api/v1/stats/plan/divisions']['get']['parameters']['query']
>['indicator']

export const api = createClient<paths>({
  baseUrl: absolute('/').replace(/\/$/, ''),
  fetch: makeAuthFetch(),
})

/** The data of an openapi-fetch answer, or throw its problem document as an ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call
  if (!response.ok || data === undefined) throw ApiError.from(response.status, error)
  return data
}
