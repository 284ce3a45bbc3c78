;; Finds nothing: returns ok(empty list). The baseline that proves the
;; wrapper in redactor.wat is a valid redactor.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    ;; result at 0: tag 0 (ok), list ptr 0, len 0
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (i32.store (i32.const 8) (i32.const 0))
    (i32.const 0))
)
