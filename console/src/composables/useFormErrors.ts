import { reactive } from 'vue'
import { ElMessage } from 'element-plus'
import { ProblemError } from '../api'
import { useProblem } from './useProblem'

/**
 * Server-side validation errors for one form: messages whose `field` names one
 * of the form's fields appear under that field (bind to ElFormItem's `error`);
 * the rest, or the problem's detail when it names no field, go to a message.
 */
export function useFormErrors<F extends string>(fields: readonly F[]) {
  const { notify, describe } = useProblem()
  // Plain strings inside, so reactive() adds no unwrapping and the cast is exact.
  const errors = reactive({}) as Partial<Record<F, string>>

  const isField = (name: string): name is F => (fields as readonly string[]).includes(name)

  function clear(): void {
    for (const field of fields) delete errors[field]
  }

  function report(err: unknown): void {
    clear()
    if (!(err instanceof ProblemError) || err.errors.length === 0) {
      notify(err)
      return
    }
    const unplaced = err.errors.filter((e) => {
      if (!isField(e.field)) return true
      errors[e.field] ??= e.message
      return false
    })
    if (unplaced.length > 0) ElMessage.error(describe(err, unplaced))
  }

  return { errors, clear, report }
}

/**
 * useFormErrors for a form whose fields come and go (rows of a table, such as a plan's prices,
 * named like `prices[0].meter`): `accepts` says whether a field is on screen now. Bind
 * `errors[name]` to each ElFormItem's `error`.
 */
export function useFieldErrors(accepts: (field: string) => boolean) {
  const { notify, describe } = useProblem()
  const errors = reactive<Record<string, string>>({})

  function clear(): void {
    for (const field of Object.keys(errors)) delete errors[field]
  }

  function report(err: unknown): void {
    clear()
    if (!(err instanceof ProblemError) || err.errors.length === 0) {
      notify(err)
      return
    }
    const unplaced = err.errors.filter((e) => {
      if (!accepts(e.field)) return true
      errors[e.field] ??= e.message
      return false
    })
    if (unplaced.length > 0) ElMessage.error(describe(err, unplaced))
  }

  return { errors, clear, report }
}
