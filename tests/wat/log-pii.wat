;; Copies PII into the host's log (level warn), then finds nothing: the
;; line must reach the host log only after the chain redacted it.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (import "host" "log" (func $log (param i32 i32 i32)))
  (data (i32.const 64) "saw user jane.doe@example.com in the batch")
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (call $log (i32.const 2) (i32.const 64) (i32.const 42))
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (i32.store (i32.const 8) (i32.const 0))
    (i32.const 0))
)
