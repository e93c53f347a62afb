import { describe, expect, it } from 'vitest'
import { ApiError, fieldMessage, flattenErrors } from './problems'

describe('problems', () => {
  it('turns marshmallow messages into Chinese', () => {
    expect(fieldMessage('Missing data for required field.')).toBe('必填')
    expect(fieldMessage('Shorter than minimum length 1.')).toBe('不能为空')
    expect(fieldMessage('Not a valid datetime.')).toBe('日期时间格式不对')
    expect(fieldMessage('Must be greater than or equal to 1 and less than or equal to 60.')).toBe('须在 1 到 60 之间')
    expect(fieldMessage('something new')).toBe('something new')
  })

  it('flattens nested errors to dotted field names', () => {
    expect(flattenErrors({ result: ['Missing data for required field.'], contact: { phone: ['Not a valid string.'] } })).toEqual({
      result: '必填',
      'contact.phone': '请填文字',
    })
  })

  it('reads a problem document: Chinese for known codes, the detail otherwise', () => {
    const known = ApiError.from(409, { code: 'case_changed', detail: 'The case moved on.' })
    expect(known.readable).toBe('工单已被他人更新，请刷新后再试。')
    const unknown = ApiError.from(400, { code: 'brand_new', detail: 'Some detail.' })
    expect(unknown.readable).toBe('Some detail.')
    expect(ApiError.from(422, { code: 'validation_failed', detail: 'x', errors: { reason: ['Missing data for required field.'] } }).fields).toEqual({ reason: '必填' })
  })
})
