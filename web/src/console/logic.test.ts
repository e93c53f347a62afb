import { describe, expect, it } from 'vitest'
import { ACTIONS, bodyFor, missing, offered } from './actions'
import { answerRows } from './answers'
import { bboxOf, mapView } from './anhuiMap'
import { maskAddress, maskName, maskPhone } from './mask'
import { scopeLabel, SCOPE_LABELS } from './scopes'
import { countdown, formatTime } from './time'
import type { Service } from '@api/client'

describe('countdown', () => {
  const now = Date.parse('2026-11-30T02:00:00Z')
  it('counts down to a deadline', () => {
    expect(countdown('2026-11-30T05:20:00Z', now)).toEqual({ text: '剩 3小时20分', overdue: false, soon: false })
  })
  it('marks a near deadline as soon and a passed one as overdue', () => {
    expect(countdown('2026-11-30T02:45:00Z', now)?.soon).toBe(true)
    expect(countdown('2026-11-28T00:00:00Z', now)).toEqual({ text: '超期 2天2小时', overdue: true, soon: false })
  })
  it('shows times in Beijing time', () => {
    expect(formatTime('2026-11-30T02:00:00Z')).toContain('10:00')
  })
})

describe('actions', () => {
  it('offers only the actions the server allows, in its order', () => {
    expect(offered(['resolve', 'something_new', 'note'])).toEqual(['resolve', 'note'])
  })
  it('asks for the required fields before sending', () => {
    expect(missing(ACTIONS.resolve, { result: '  ' })).toEqual({ result: '请填写办理结果' })
    expect(missing(ACTIONS.accept, {})).toEqual({})
  })
  it('leaves empty optional fields out of the body and sends the version', () => {
    expect(bodyFor(ACTIONS.schedule, { scheduled_at: '2026-12-01T09:00:00+08:00', note: '' }, 3)).toEqual({
      expected_version: 3,
      scheduled_at: '2026-12-01T09:00:00+08:00',
    })
  })
  it('sends the resolution photos by upload id, and no empty list', () => {
    expect(bodyFor(ACTIONS.resolve, { result: ' 已办结 ', photos: ['6b0c'] })).toEqual({ result: '已办结', photos: ['6b0c'] })
    expect(bodyFor(ACTIONS.resolve, { result: '已办结', photos: [] })).toEqual({ result: '已办结' })
    expect(missing(ACTIONS.resolve, { result: '已办结' })).toEqual({})
  })
})

describe('answers', () => {
  const service = {
    code: 'elderly_home_visit',
    name_zh: '上门探访',
    name_en: 'Home visit',
    scenario: 'elderly',
    version: 1,
    fields: [
      { code: 'frequency', type: 'single_choice', label_zh: '探访频次', label_en: 'Frequency', choices: [{ code: 'weekly', label_zh: '每周', label_en: 'Weekly' }] },
      { code: 'needs', type: 'multi_choice', label_zh: '需要', label_en: 'Needs', choices: [{ code: 'meal', label_zh: '助餐', label_en: 'Meals' }, { code: 'bath', label_zh: '助浴', label_en: 'Bathing' }] },
      { code: 'age', type: 'number', label_zh: '年龄', label_en: 'Age' },
    ],
  } as unknown as Service
  it('renders answers with the field and choice labels, in field order', () => {
    expect(answerRows(service, { age: 81, needs: ['meal', 'bath'], frequency: 'weekly' })).toEqual([
      { code: 'frequency', label: '探访频次', value: '每周' },
      { code: 'needs', label: '需要', value: '助餐、助浴' },
      { code: 'age', label: '年龄', value: '81' },
    ])
  })
})

describe('the case map view', () => {
  const county = [118.0, 29.5, 118.9, 30.3] as [number, number, number, number]
  it('centres on the county and zooms so it fills the map', () => {
    const v = mapView([118.43, 29.87], county)
    expect(v.center[0]).toBeCloseTo(118.45)
    expect(v.center[1]).toBeCloseTo(29.9)
    expect(v.zoom).toBeCloseTo(4.6 / 0.9)
  })
  it('falls back to the point, then to the whole province', () => {
    expect(mapView([117.1, 31.9], null)).toEqual({ center: [117.1, 31.9], zoom: 6 })
    expect(mapView(null, null).zoom).toBe(1)
  })
  it('takes the bounding box of every ring of a multipolygon', () => {
    const box = bboxOf({
      properties: { code: '341021', name: '歙县' },
      geometry: { type: 'MultiPolygon', coordinates: [[[[118, 29.5], [118.5, 30], [118, 30]]], [[[118.9, 29.6], [118.7, 30.3], [118.8, 29.9]]]] },
    })
    expect(box).toEqual([118, 29.5, 118.9, 30.3])
  })
})

describe('masking personal data in lists', () => {
  it('keeps the first character of a name and the ends of a phone number', () => {
    expect(maskName('王秀英')).toBe('王**')
    expect(maskName(' 李 ')).toBe('*')
    expect(maskName(null)).toBe('')
    expect(maskPhone('13800138000')).toBe('138****8000')
    expect(maskPhone('0559-6512345')).toBe('055*****2345')
    expect(maskPhone('12345')).toBe('*****')
  })
  it('hides house numbers in an address', () => {
    expect(maskAddress('昱东街道 新安路 2 号 3 栋 401 室')).toBe('昱东街道 新安路 *号 *栋 *室')
  })
})

describe('scope labels', () => {
  it('names every scope in Chinese, the newer ones too', () => {
    for (const [scope, label] of Object.entries(SCOPE_LABELS)) expect(label, scope).toMatch(/[\u4e00-\u9fff]/)
    expect(['visits:read', 'volunteers:read', 'alerts:write', 'visits:write'].map(scopeLabel)).toEqual([
      '接收探访事件',
      '接收志愿服务事件',
      '上报设备告警',
      '提交外呼探访结果',
    ])
  })
  it('shows a scope it has no words for as the API spells it', () => {
    expect(scopeLabel('future:scope')).toBe('future:scope')
  })
})
