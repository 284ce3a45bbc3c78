;; Calls the host's `log` (level warn) in an endless loop.
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (import "host" "log" (func $log (param i32 i32 i32)))
  (data (i32.const 16) "flood")
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (loop $again
      (call $log (i32.const 2) (i32.const 16) (i32.const 5))
      (br $again))
    unreachable)
)
