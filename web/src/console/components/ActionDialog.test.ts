import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import ActionDialog from './ActionDialog.vue'

function problem422() {
  return new Response(
    JSON.stringify({ type: '/problems/validation_failed', title: 'x', status: 422, code: 'validation_failed', detail: 'x', errors: { scheduled_at: ['Not a valid datetime.'] } }),
    { status: 422, headers: { 'Content-Type': 'application/problem+json' } },
  )
}

describe('ActionDialog', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
    document.body.innerHTML = ''
  })

  it('shows required-field messages without calling the server', async () => {
    const fetch = vi.fn()
    vi.stubGlobal('fetch', fetch)
    const w = mount(ActionDialog, { props: { action: null, caseId: 'c1', version: 2 }, attachTo: document.body })
    await w.setProps({ action: 'resolve' })
    await flushPromises()
    ;(document.querySelector('[data-test=action-submit]') as HTMLButtonElement).click()
    await flushPromises()
    await new Promise((r) => setTimeout(r, 100))
    expect(fetch).not.toHaveBeenCalled()
    expect(document.body.textContent).toContain('请填写办理结果')
    w.unmount()
  })

  it("puts the server's field errors, in Chinese, at the field", async () => {
    const fetch = vi.fn(async () => problem422())
    vi.stubGlobal('fetch', fetch)
    const w = mount(ActionDialog, { props: { action: null, caseId: 'c1', version: 2 }, attachTo: document.body })
    await w.setProps({ action: 'note' })
    await flushPromises()
    const area = document.querySelector('textarea[name=text]') as HTMLTextAreaElement
    area.value = '已电话联系'
    area.dispatchEvent(new Event('input'))
    await flushPromises()
    ;(document.querySelector('[data-test=action-submit]') as HTMLButtonElement).click()
    await flushPromises()
    expect(fetch).toHaveBeenCalledOnce()
    const req = (fetch.mock.calls[0] as unknown as [Request])[0]
    expect(new URL(req.url).pathname).toBe('/api/v1/cases/c1/note')
    expect(await req.json()).toEqual({ expected_version: 2, text: '已电话联系' })
    expect(document.body.textContent).toContain('有些内容没填或格式不对')
    expect(w.emitted('done')).toBeUndefined()
    w.unmount()
  })

  it('uploads a picked photo first, holds the submit while it uploads, then sends its id with the result', async () => {
    let release: (r: Response) => void = () => {}
    const uploaded = new Promise<Response>((r) => (release = r))
    const fetch = vi.fn(async (req: Request) =>
      new URL(req.url).pathname === '/api/v1/uploads'
        ? uploaded
        : new Response(JSON.stringify({ id: 'c1', status: 'resolved' }), { status: 200, headers: { 'Content-Type': 'application/json' } }),
    )
    vi.stubGlobal('fetch', fetch)
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL: () => 'blob:local', revokeObjectURL: () => undefined }))
    const w = mount(ActionDialog, { props: { action: null, caseId: 'c1', version: 4 }, attachTo: document.body })
    await w.setProps({ action: 'resolve' })
    await flushPromises()
    const area = document.querySelector('textarea[name=result]') as HTMLTextAreaElement
    area.value = '已修好'
    area.dispatchEvent(new Event('input'))
    const input = document.querySelector('input[name=photos]') as HTMLInputElement
    const file = new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], 'a.png', { type: 'image/png' })
    Object.defineProperty(input, 'files', { value: [file] })
    input.dispatchEvent(new Event('change'))
    await flushPromises()
    const submit = document.querySelector('[data-test=action-submit]') as HTMLButtonElement
    expect(submit.disabled).toBe(true) // the photo is still uploading
    release(new Response(JSON.stringify({ id: 'up-1' }), { status: 201, headers: { 'Content-Type': 'application/json' } }))
    await flushPromises()
    expect(document.querySelector('[data-uploaded=true]')).not.toBeNull()
    expect(submit.disabled).toBe(false)
    submit.click()
    await flushPromises()
    const calls = fetch.mock.calls.map((c) => (c as unknown as [Request])[0])
    expect(calls.map((r) => new URL(r.url).pathname)).toEqual(['/api/v1/uploads', '/api/v1/cases/c1/resolve'])
    expect(await calls[1].json()).toEqual({ expected_version: 4, result: '已修好', photos: ['up-1'] })
    expect(w.emitted('done')).toEqual([['resolve']])
    w.unmount()
  })
})
