import { beforeEach, describe, expect, it } from 'vitest'
import {
  canCancel,
  clearRegisterDraft,
  loadRegisterDraft,
  readCode,
  registerBody,
  saveRegisterDraft,
  signupText,
  typedCodeProblem,
  verifyUrl,
} from './volunteer'

const LONG = 'v1.eyJhIjoiNjVhMGMwZmZlZTAwIiwicCI6ImluIn0.AbCd-EfGh_IjKl'

describe('reading a scanned or typed check-in code', () => {
  it('takes the signed code out of the address the QR code holds', () => {
    const url = `https://huimin.example/h5/volunteer/checkin?code=${encodeURIComponent(LONG)}`
    expect(readCode(url)).toEqual({ code: LONG, typed: false })
    expect(readCode(`  ${LONG} `)).toEqual({ code: LONG, typed: false })
  })

  it('reads 6 typed characters loosely (case, spaces, dashes) and refuses look-alikes', () => {
    expect(readCode('k7m 4-qx')).toEqual({ code: 'K7M4QX', typed: true })
    expect(readCode('K7M4Q')).toBeNull()
    expect(readCode('K7M4Q0')).toBeNull()
    expect(typedCodeProblem('K7M4QO')).toBe('签到码里没有 0、1、I、O、L，请再看一下屏幕')
    expect(typedCodeProblem('')).toBe('请输入屏幕上的 6 位签到码')
    expect(typedCodeProblem('K7M4QX')).toBeNull()
  })
})

describe('sign-up states in plain words', () => {
  it('says which place on the waiting list', () => {
    expect(signupText({ status: 'waitlisted', waiting_position: 2 }).text).toBe('名额已满，候补第 2 位')
    expect(signupText({ status: 'pending' }).text).toBe('已报名，等组织方确认')
    expect(signupText({ status: 'confirmed' }).tag).toBe('success')
  })

  it('lets a confirmed place go only until 2 hours before the start', () => {
    const now = Date.parse('2026-12-05T00:00:00Z')
    const in3h = { start_at: '2026-12-05T03:00:00Z' }
    const in1h = { start_at: '2026-12-05T01:00:00Z' }
    expect(canCancel({ status: 'confirmed' }, in3h, now)).toBe(true)
    expect(canCancel({ status: 'confirmed' }, in1h, now)).toBe(false)
    expect(canCancel({ status: 'waitlisted' }, in1h, now)).toBe(true)
    expect(canCancel({ status: 'cancelled' }, in3h, now)).toBe(false)
  })
})

describe('the registration draft', () => {
  beforeEach(() => localStorage.clear())

  it('keeps what was typed until the server has it', () => {
    const v = { ...loadRegisterDraft(), name: ' 李志愿 ', id_card: '34100219900101001x', phone: '137 1234 5678' }
    saveRegisterDraft({ ...v, skills: ['errands'], township: '341002001', township_name: '黄山市 屯溪区 昱东街道' })
    const back = loadRegisterDraft()
    expect(back.name).toBe(' 李志愿 ')
    expect(registerBody(back)).toEqual({
      name: '李志愿',
      id_card: '34100219900101001X',
      phone: '13712345678',
      skills: ['errands'],
      availability: null,
      township: '341002001',
    })
    clearRegisterDraft()
    expect(loadRegisterDraft().name).toBe('')
  })

  it('starts empty from a damaged draft', () => {
    localStorage.setItem('huimin.h5.volunteer.register', '{oops')
    expect(loadRegisterDraft().skills).toEqual([])
  })
})

it('points at the public verify page', () => {
  expect(verifyUrl('ABCD2345EFGH', 'https://huimin.example')).toBe('https://huimin.example/verify/ABCD2345EFGH')
})
