import { describe, expect, it } from 'vitest'
import { elapsed, escalationStep } from './alerts'

describe('the alert board', () => {
  const now = Date.parse('2026-11-30T03:00:00Z')
  it('shows the time since an alert in minutes and seconds, then hours', () => {
    expect(elapsed('2026-11-30T02:57:55Z', now)).toBe('2分05秒')
    expect(elapsed('2026-11-30T00:49:00Z', now)).toBe('2小时11分')
    expect(elapsed('2026-11-30T03:00:10Z', now)).toBe('0分00秒')
    expect(elapsed(null, now)).toBe('')
  })
  it('names the escalation step reached and whom it went to', () => {
    expect(escalationStep(null)).toBe('未升级 Not escalated')
    expect(escalationStep({ level: 0, history: [] })).toBe('未升级 Not escalated')
    expect(escalationStep({ level: 1, history: [{ level: 1, to: 'station_head' }] })).toBe('第1步 站长 Station head')
    expect(
      escalationStep({
        level: 2,
        done: true,
        history: [{ level: 1, to: 'station_head' }, { level: 2, to: 'county' }, { level: 2, stopped: 'case_accepted' }],
      }),
    ).toBe('第2步 县民政局 County')
  })
})
