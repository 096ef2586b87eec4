import { Tracer } from "effect"

/** A tracer that records every span it makes (Effect's native spans underneath), for tests of span shapes. */
export const capturingTracer = () => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = Tracer.nativeTracer.span(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}
