// The resident's volunteer pages (志愿服务): plain words for skills and states, reading the
// code a volunteer scanned or typed, and the registration draft kept on the phone until the
// server has it (a slow or lost network never costs what was typed).
import type { Schemas } from '@api/client'
import { formatTime } from './words'

export type Volunteer = Schemas['Volunteer']
export type Activity = Schemas['Activity']
export type MySignup = Schemas['MySignup']
export type Attendance = Schemas['Attendance']
export type VolunteerRecord = Schemas['VolunteerRecord']
export type Certificate = Schemas['Certificate']
export type Skill = NonNullable<Schemas['VolunteerCreate']['skills']>[number]

export const SKILLS: Record<Skill, string> = {
  companionship: '陪伴关怀',
  errands: '代办跑腿',
  medical: '医疗护理',
  counselling: '心理疏导',
  legal: '法律咨询',
  teaching: '教育辅导',
  repair: '家电维修',
  cleaning: '保洁',
  cooking: '助餐',
  driving: '驾驶',
  photography: '摄影',
  other: '其他',
}

export function skillNames(codes: readonly string[] | undefined): string {
  return (codes ?? []).map((c) => SKILLS[c as Skill] ?? c).join('、')
}

type Tag = 'primary' | 'success' | 'warning' | 'danger' | 'default'

/** A sign-up's state in plain words (the waiting list with the place in it). */
export function signupText(s: Pick<MySignup, 'status' | 'waiting_position'>): { text: string; tag: Tag } {
  switch (s.status) {
    case 'pending':
      return { text: '已报名，等组织方确认', tag: 'primary' }
    case 'confirmed':
      return { text: '已确认，请按时参加', tag: 'success' }
    case 'waitlisted':
      return { text: s.waiting_position ? `名额已满，候补第 ${s.waiting_position} 位` : '名额已满，候补中', tag: 'warning' }
    case 'declined':
      return { text: '组织方未录用', tag: 'default' }
    case 'cancelled':
      return { text: '已取消报名', tag: 'default' }
    default:
      return { text: s.status ?? '', tag: 'default' }
  }
}

/** Where the volunteer stands at the activity itself: checked in, out, hours confirmed. */
export function attendanceText(a: Attendance | null | undefined): string {
  if (!a) return ''
  if (a.status === 'checked_in') return `已签到 ${formatTime(a.check_in_at)}，结束时请签退`
  if (a.status === 'checked_out') return `已签退，${hoursText(a.hours)}，等组织方确认时长`
  if (a.status === 'confirmed') return `时长已确认：${hoursText(a.hours)}`
  return ''
}

export function hoursText(hours: number | null | undefined): string {
  const h = Math.round((hours ?? 0) * 10) / 10
  return `${h} 小时`
}

/** "12月5日 09:00 – 12:00" (the end's date only when it differs). */
export function activityTime(a: Pick<Activity, 'start_at' | 'end_at'>): string {
  const start = formatTime(a.start_at)
  const end = formatTime(a.end_at)
  const sameDay = start.split(' ')[0] === end.split(' ')[0]
  return `${start} – ${sameDay ? end.split(' ').slice(1).join(' ') : end}`
}

export function slotsText(a: Pick<Activity, 'slots' | 'confirmed_count'>): string {
  const left = Math.max(0, (a.slots ?? 0) - (a.confirmed_count ?? 0))
  return left > 0 ? `还剩 ${left} 个名额（共 ${a.slots}）` : `名额已满（共 ${a.slots}），可以候补`
}

/** Can the volunteer still give up this sign-up from the app (a confirmed place until 2 h before)? */
export function canCancel(s: Pick<MySignup, 'status'>, a: Pick<Activity, 'start_at'>, now = Date.now()): boolean {
  if (s.status === 'pending' || s.status === 'waitlisted') return true
  if (s.status !== 'confirmed' || !a.start_at) return false
  return new Date(a.start_at).getTime() - now >= 2 * 3_600_000
}

export interface ReadCode {
  code: string
  typed: boolean
}

const SHORT = /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}$/

/**
 * The check-in code in what was scanned or typed: the QR code holds the app's address
 * `/h5/volunteer/checkin?code=v1.…` (so a phone's camera opens this page), a code scanned in
 * the app may be the bare `v1.…`, and a code typed from the screen has 6 letters and digits.
 */
export function readCode(text: string): ReadCode | null {
  const raw = text.trim()
  if (!raw) return null
  const fromUrl = raw.match(/[?&]code=([^&#\s]+)/)
  const candidate = fromUrl ? decodeURIComponent(fromUrl[1]) : raw
  if (/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(candidate)) return { code: candidate, typed: false }
  const short = candidate.toUpperCase().replace(/[\s-]/g, '')
  return SHORT.test(short) ? { code: short, typed: true } : null
}

/** Why a typed code cannot be right, in plain words (null when it may be). */
export function typedCodeProblem(text: string): string | null {
  if (!text.trim()) return '请输入屏幕上的 6 位签到码'
  if (readCode(text)) return null
  const short = text.toUpperCase().replace(/[\s-]/g, '')
  if (/[01IOL]/.test(short)) return '签到码里没有 0、1、I、O、L，请再看一下屏幕'
  return '签到码是 6 位字母和数字'
}

// ---------------------------------------------------------------- the registration draft

export interface RegisterValues {
  name: string
  id_card: string
  phone: string
  skills: string[]
  availability: string
  township: string
  township_name: string
}

const DRAFT_KEY = 'huimin.h5.volunteer.register'

export function emptyRegister(): RegisterValues {
  return { name: '', id_card: '', phone: '', skills: [], availability: '', township: '', township_name: '' }
}

export function loadRegisterDraft(storage: Storage | undefined = globalThis.localStorage): RegisterValues {
  try {
    const raw = storage?.getItem(DRAFT_KEY)
    return raw ? { ...emptyRegister(), ...(JSON.parse(raw) as Partial<RegisterValues>) } : emptyRegister()
  } catch {
    return emptyRegister()
  }
}

export function saveRegisterDraft(values: RegisterValues, storage: Storage | undefined = globalThis.localStorage): void {
  try {
    storage?.setItem(DRAFT_KEY, JSON.stringify(values))
  } catch {
    // storage full or disabled: the form still holds the values
  }
}

export function clearRegisterDraft(storage: Storage | undefined = globalThis.localStorage): void {
  storage?.removeItem(DRAFT_KEY)
}

/** The registration as the API takes it. */
export function registerBody(v: RegisterValues): Schemas['VolunteerCreate'] {
  return {
    name: v.name.trim(),
    id_card: v.id_card.trim().toUpperCase(),
    phone: v.phone.replace(/\s/g, ''),
    skills: v.skills as Skill[],
    availability: v.availability.trim() || null,
    township: v.township,
  }
}

/** The public page that confirms a certificate (the PDF's QR code points at the same page). */
export function verifyUrl(code: string, origin = globalThis.location?.origin ?? ''): string {
  return `${origin}/verify/${encodeURIComponent(code)}`
}
