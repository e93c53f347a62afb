import { beforeEach, describe, expect, it } from 'vitest'
import { clearDraft, emptyDraft, listDrafts, loadDraft, saveDraft } from './draft'

describe('the draft kept on the device', () => {
  beforeEach(() => localStorage.clear())

  it('keeps what was typed and its Idempotency-Key until the case is sent', () => {
    const d = emptyDraft('elderly_home_visit', { elder_name: '' })
    d.values.elder_name = '王奶奶'
    d.place = { kind: 'township', code: '341021100', name: '徽城镇' }
    saveDraft(d)
    const back = loadDraft('elderly_home_visit')
    expect(back?.values.elder_name).toBe('王奶奶')
    expect(back?.place).toEqual({ kind: 'township', code: '341021100', name: '徽城镇' })
    expect(back?.idempotencyKey).toBe(d.idempotencyKey)
    clearDraft('elderly_home_visit')
    expect(loadDraft('elderly_home_visit')).toBeNull()
  })

  it('gives each new filing its own key', () => {
    expect(emptyDraft('a', {}).idempotencyKey).not.toBe(emptyDraft('a', {}).idempotencyKey)
  })

  it('drops a damaged draft instead of failing', () => {
    localStorage.setItem('huimin.h5.draft.x', '{not json')
    expect(loadDraft('x')).toBeNull()
    expect(localStorage.getItem('huimin.h5.draft.x')).toBeNull()
  })

  it('lists unsent drafts, newest first, and nothing else in storage', () => {
    saveDraft(emptyDraft('older', {}), 1000)
    saveDraft(emptyDraft('newer', {}), 2000)
    localStorage.setItem('huimin.h5.session', '{}')
    expect(listDrafts().map((d) => d.serviceCode)).toEqual(['newer', 'older'])
  })
})
