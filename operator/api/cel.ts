// CEL validation rules live next to the zod schema they guard, so the CRD (apiserver-side) and
// zod (operator-side) checks cannot drift apart: one call attaches both the
// `x-kubernetes-validations` entry that generate-crds copies into the CRD and, where a JS
// equivalent exists, a zod refinement with the same message.
import type { z } from 'zod';

export interface CelRule<T> {
  /** CEL expression evaluated by the apiserver; `self` is the guarded value, `oldSelf` its previous value. */
  rule: string;
  /** Shown to the user by the apiserver and by zod; name the field and say what to do. */
  message: string;
  /** FieldValueInvalid etc.; the apiserver's default is FieldValueInvalid. */
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  /** Relative JSONPath of the field to blame, e.g. `.steps`. */
  fieldPath?: string;
  /**
   * The same rule in JS, run by zod. Omitted for transition rules (they need the old object,
   * which only the apiserver has).
   */
  check?: (value: T) => boolean;
  /** Path (relative to the guarded value) zod reports the issue at. */
  path?: PropertyKey[];
}

export interface K8sValidation {
  rule: string;
  message: string;
  reason?: string;
  fieldPath?: string;
}

export const VALIDATIONS_KEY = 'x-kubernetes-validations';

export function withRules<S extends z.ZodType>(schema: S, rules: CelRule<z.output<S>>[]): S {
  let out: z.ZodType = schema;
  const checked = rules.filter((r) => r.check);
  if (checked.length > 0) {
    out = out.superRefine((value, ctx) => {
      for (const r of checked) {
        if (!r.check!(value as z.output<S>)) {
          // Blame the same field the apiserver does.
          const path = r.path ?? (r.fieldPath ? r.fieldPath.split('.').filter(Boolean) : []);
          ctx.addIssue({ code: 'custom', message: r.message, path });
        }
      }
    });
  }
  const validations: K8sValidation[] = rules.map(({ rule, message, reason, fieldPath }) => ({
    rule,
    message,
    ...(reason ? { reason } : {}),
    ...(fieldPath ? { fieldPath } : {}),
  }));
  // Rules attached earlier to the same schema are kept, not replaced.
  const earlier = (schema.meta()?.[VALIDATIONS_KEY] as K8sValidation[] | undefined) ?? [];
  return out.meta({ ...schema.meta(), [VALIDATIONS_KEY]: [...earlier, ...validations] }) as unknown as S;
}
