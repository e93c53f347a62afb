import { describe, expect, it } from 'vitest'
import { fitWithin } from './photos'
import { dueText, serviceIcon, stepText } from './words'

describe('plain words for residents', () => {
  it('tells each step of the history as a sentence', () => {
    expect(stepText({ action: 'submit', to_state: 'dispatched' }, '徽城镇社工站')).toBe('您提交了申请，已交给徽城镇社工站')
    expect(stepText({ action: 'submit', to_state: 'unrouted' })).toBe('您提交了申请，正在为您安排社工站')
    expect(stepText({ action: 'accept', to_state: 'accepted' })).toBe('社工站已接手，正在安排')
    expect(stepText({ action: 'resolve', to_state: 'resolved', note: '已上门看望' })).toBe('已办完：已上门看望')
    expect(stepText({ action: 'something_new', to_state: 'in_progress' })).toBe('正在办理')
  })

  it('says how long is left before a deadline', () => {
    const now = Date.parse('2026-12-01T00:00:00Z')
    expect(dueText('2026-12-03T01:00:00Z', now)).toBe('还有 2 天')
    expect(dueText('2026-12-01T05:00:00Z', now)).toBe('还有 5 小时')
    expect(dueText('2026-11-30T00:00:00Z', now)).toMatch(/已超时/)
  })

  it('maps icon keys to pictures, with a fallback', () => {
    expect(serviceIcon('home-visit')).toBe('friends-o')
    expect(serviceIcon('nope')).toBe('apps-o')
  })

  it('shrinks photos to at most 1600 px on the long side and never enlarges them', () => {
    expect(fitWithin(4000, 3000)).toEqual({ width: 1600, height: 1200 })
    expect(fitWithin(3000, 4000)).toEqual({ width: 1200, height: 1600 })
    expect(fitWithin(800, 600)).toEqual({ width: 800, height: 600 })
  })
})
