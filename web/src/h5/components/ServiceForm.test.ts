import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import type { FormField } from '@api/client'
import ServiceForm from './ServiceForm.vue'
import { emptyValues } from '../form'

const f = (code: string, type: string, extra: Partial<FormField> = {}): FormField =>
  ({ code, type, label_zh: `问题${code}`, label_en: code, required: false, choices: [], min: null, max: null, max_length: null, help_zh: '', help_en: '', ...extra }) as FormField
const CHOICES = [
  { code: 'a', label_zh: '甲', label_en: 'A' },
  { code: 'b', label_zh: '乙', label_en: 'B' },
]
const FIELDS = [
  f('s', 'string', { required: true, help_zh: '和身份证上的一样' }),
  f('t', 'text', { max_length: 100 }),
  f('n', 'number', { min: 1, max: 20 }),
  f('d', 'date'),
  f('dt', 'datetime'),
  f('one', 'single_choice', { choices: CHOICES }),
  f('many', 'multi_choice', { choices: CHOICES }),
  f('p', 'phone'),
  f('id', 'id_card'),
]

describe('ServiceForm', () => {
  it('draws one labelled control for every field type', () => {
    const w = mount(ServiceForm, { props: { fields: FIELDS, values: emptyValues(FIELDS), errors: {} } })
    const input = (code: string) => w.find(`#f-${code}`)
    expect(input('s').attributes('type')).toBe('text')
    expect(w.find('textarea#f-t').exists()).toBe(true)
    expect(input('n').attributes('inputmode')).toBe('decimal')
    expect(input('d').attributes('type')).toBe('date')
    expect(input('dt').attributes('type')).toBe('datetime-local')
    expect(input('p').attributes('type')).toBe('tel')
    expect(w.find('label[for=f-s]').text()).toContain('问题s')
    expect(w.find('[role=radiogroup][aria-labelledby=q-one]').findAll('[role=radio]')).toHaveLength(2)
    expect(w.find('[role=group][aria-labelledby=q-many]').findAll('[role=checkbox]')).toHaveLength(2)
    expect(w.text()).toContain('和身份证上的一样')
    expect(w.text()).toContain('（可多选）')
  })

  it('shows the error under its question and reports changes by field code', async () => {
    const w = mount(ServiceForm, {
      props: { fields: FIELDS, values: emptyValues(FIELDS), errors: { n: '不能大于 20', one: '请选择' } },
    })
    expect(w.find('[data-field=n]').text()).toContain('不能大于 20')
    expect(w.find('#e-one').text()).toBe('请选择')
    await w.find('#f-s').setValue('王芳')
    expect(w.emitted('change')?.[0]).toEqual(['s', '王芳'])
    await w.find('#f-id').setValue('3'.repeat(20))
    expect(w.emitted('change')?.at(-1)).toEqual(['id', '3'.repeat(18)])
    await w.findAll('[role=checkbox]')[1].trigger('click')
    expect(w.emitted('change')?.at(-1)).toEqual(['many', ['b']])
  })
})
