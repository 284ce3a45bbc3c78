;; Returns one finding whose replacement is not UTF-8 (the bytes FF FE).
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (data (i32.const 16) "r\ff\fe")
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (i32.store (i32.const 32) (i32.const 0))    ;; field
    (i32.store (i32.const 36) (i32.const 0))    ;; start
    (i32.store (i32.const 40) (i32.const 1))    ;; end
    (i32.store (i32.const 44) (i32.const 16))   ;; rule-id "r"
    (i32.store (i32.const 48) (i32.const 1))
    (i32.store (i32.const 52) (i32.const 17))   ;; replacement FF FE
    (i32.store (i32.const 56) (i32.const 2))
    (i32.store8 (i32.const 0) (i32.const 0))    ;; ok
    (i32.store (i32.const 4) (i32.const 32))
    (i32.store (i32.const 8) (i32.const 1))
    (i32.const 0))
)
