import { describe, expect, it } from 'vitest'
import type { FormField } from '@api/client'
import { beijingTime, emptyValues, fieldProblem, idCardCheckChar, idCardProblem, mapServerErrors, toAnswers, validateValues } from './form'

const f = (code: string, type: string, extra: Partial<FormField> = {}): FormField =>
  ({ code, type, label_zh: code, label_en: code, required: false, choices: [], min: null, max: null, max_length: null, help_zh: '', help_en: '', ...extra }) as FormField

const FIELDS: FormField[] = [
  f('name', 'string', { required: true, max_length: 5 }),
  f('notes', 'text'),
  f('age', 'number', { required: true, min: 60, max: 130 }),
  f('day', 'date'),
  f('at', 'datetime'),
  f('living', 'single_choice', { choices: [{ code: 'alone', label_zh: '独居', label_en: 'alone' }] }),
  f('needs', 'multi_choice', { required: true, choices: [{ code: 'meals', label_zh: '助餐', label_en: 'meals' }, { code: 'bath', label_zh: '助浴', label_en: 'bath' }] }),
  f('phone', 'phone'),
  f('id', 'id_card'),
]
// A valid number: region 341021, born 1945-01-01, serial 123, and its check character.
const ID = '341021194501011230'.slice(0, 17) + idCardCheckChar('34102119450101123')

describe('the filing form', () => {
  it('starts empty, with a list for multi-choice questions', () => {
    const v = emptyValues(FIELDS)
    expect(v.name).toBe('')
    expect(v.needs).toEqual([])
  })

  it('names every missing required answer and nothing else', () => {
    expect(validateValues(FIELDS, emptyValues(FIELDS))).toEqual({ name: '请填写', age: '请填写', needs: '请选择' })
  })

  it('checks answers as the server does', () => {
    const today = new Date('2026-12-01')
    expect(fieldProblem(FIELDS[0], '王小明小明')).toBeNull()
    expect(fieldProblem(FIELDS[0], '王小明小明明')).toBe('最多 5 个字')
    expect(fieldProblem(FIELDS[2], '59')).toBe('不能小于 60')
    expect(fieldProblem(FIELDS[2], '131')).toBe('不能大于 130')
    expect(fieldProblem(FIELDS[2], '七十')).toBe('请填数字')
    expect(fieldProblem(FIELDS[3], '2026-13-45')).toBe('请选择日期')
    expect(fieldProblem(FIELDS[4], '2026-12-01T09:30')).toBeNull()
    expect(fieldProblem(FIELDS[5], 'nobody')).toBe('请选择')
    expect(fieldProblem(FIELDS[6], ['meals', 'x'])).toBe('请选择')
    expect(fieldProblem(FIELDS[7], '0551-12345678')).toBeNull()
    expect(fieldProblem(FIELDS[7], '+86 139 1234 5678')).toBeNull()
    expect(fieldProblem(FIELDS[7], '12345')).toMatch(/手机号/)
    expect(fieldProblem(FIELDS[8], ID, today)).toBeNull()
    expect(fieldProblem(FIELDS[8], ID.toLowerCase(), today)).toBeNull()
  })

  it('refuses ID numbers with a wrong check digit, region or birth date', () => {
    const wrongCheck = ID.slice(0, 17) + (ID[17] === '0' ? '1' : '0')
    expect(idCardProblem(wrongCheck)).toMatch(/最后一位/)
    expect(idCardProblem('99' + ID.slice(2))).toMatch(/开头/)
    const feb30 = '34102119450230123'
    expect(idCardProblem(feb30 + idCardCheckChar(feb30))).toMatch(/出生日期/)
    expect(idCardProblem('12345')).toMatch(/18 位/)
  })

  it('sends typed answers and leaves empty ones out', () => {
    const values = { ...emptyValues(FIELDS), name: ' 王芳 ', age: '82', at: '2026-12-01T09:30', needs: ['bath'], id: ID.toLowerCase() }
    expect(toAnswers(FIELDS, values)).toEqual({
      name: '王芳',
      age: 82,
      at: '2026-12-01T09:30:00+08:00',
      needs: ['bath'],
      id: ID.toUpperCase(),
    })
    expect(beijingTime('2026-12-01T09:30:15')).toBe('2026-12-01T09:30:15+08:00')
  })

  it("maps the server's field errors back to the questions, in plain words", () => {
    const mapped = mapServerErrors({
      'answers.age': 'Must be at least 60.',
      'answers.id': 'The check digit does not match; please check the number.',
      'contact.phone': '须为以下之一',
      address: 'Required.',
    })
    expect(mapped.answers).toEqual({ age: '不能小于 60', id: '身份证号不对，请核对' })
    expect(mapped.other).toEqual({ 'contact.phone': '须为以下之一', address: '请填写' })
  })
})
