;; Returns 1,000,000 findings (28 MB of them) for any batch, all on the
;; first byte of field 0. The list is allocated once per instance (the
;; allocator never frees).
(core module $Hostile
  (import "libc" "memory" (memory 1))
  (import "libc" "realloc" (func $realloc (param i32 i32 i32 i32) (result i32)))
  (data (i32.const 16) "r<X>")
  (global $list (mut i32) (i32.const 0))
  (func (export "redact") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (local $list i32) (local $at i32) (local $end i32)
    (if (i32.eqz (global.get $list))
      (then (global.set $list (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 28000000)))))
    (local.set $list (global.get $list))
    (local.set $at (local.get $list))
    (local.set $end (i32.add (local.get $list) (i32.const 28000000)))
    (loop $each
      (i32.store offset=0 (local.get $at) (i32.const 0))    ;; field
      (i32.store offset=4 (local.get $at) (i32.const 0))    ;; start
      (i32.store offset=8 (local.get $at) (i32.const 1))    ;; end
      (i32.store offset=12 (local.get $at) (i32.const 16))  ;; rule-id "r"
      (i32.store offset=16 (local.get $at) (i32.const 1))
      (i32.store offset=20 (local.get $at) (i32.const 17))  ;; replacement "<X>"
      (i32.store offset=24 (local.get $at) (i32.const 3))
      (local.set $at (i32.add (local.get $at) (i32.const 28)))
      (br_if $each (i32.lt_u (local.get $at) (local.get $end))))
    (i32.store8 (i32.const 0) (i32.const 0))                ;; ok
    (i32.store (i32.const 4) (local.get $list))
    (i32.store (i32.const 8) (i32.const 1000000))
    (i32.const 0))
)
