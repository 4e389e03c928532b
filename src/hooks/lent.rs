//! Hooks *lent* to a network for a stretch of code ([`crate::Network::with_hook`]), which may
//! borrow the caller's local state: no `'static`, no `Arc<Mutex<…>>`.
//!
//! # How it stays sound
//! The network cannot store a borrowed hook: a `&mut Network` handed to the caller's code could
//! be swapped with another network and outlive the borrow. So the hook is registered, for the
//! network's id, in a thread-local list owned by the frame of `with_hook`, which removes it when
//! the caller's code returns or unwinds. A pass on that network, started on this thread while
//! the registration lives, copies the hook's address into the network's own buffer, uses it
//! only during that pass, and empties the buffer before returning. So a lent hook is only ever
//! reached while `with_hook` holds the exclusive borrow of it, by one pass at a time.

use std::any::TypeId;
use std::cell::RefCell;
use std::marker::PhantomData;

use super::Hook;
use crate::Float;

/// One registration: the network it is lent to, the float type of that network, and the
/// address of a `&mut dyn Hook<F>` living in the lender's frame.
struct Registration {
    network: u64,
    float: TypeId,
    hook: *mut (),
}

thread_local! {
    static LENT: RefCell<Vec<Registration>> = const { RefCell::new(Vec::new()) };
}

/// Lends `hook` to the network with id `network` for passes started on this thread until the
/// guard drops. `hook` must stay borrowed for as long as the guard lives, which its lifetime
/// ensures.
pub(crate) fn lend<'g, 'h: 'g, F: Float>(
    network: u64,
    hook: &'g mut &'h mut (dyn Hook<F> + 'h),
) -> LendGuard<'g> {
    let address = hook as *mut &'h mut (dyn Hook<F> + 'h) as *mut ();
    LENT.with(|lent| {
        lent.borrow_mut().push(Registration { network, float: TypeId::of::<F>(), hook: address })
    });
    LendGuard { address, _borrow: PhantomData }
}

/// Removes its registration when dropped (also while unwinding).
pub(crate) struct LendGuard<'g> {
    address: *mut (),
    _borrow: PhantomData<&'g mut ()>,
}

impl Drop for LendGuard<'_> {
    fn drop(&mut self) {
        let _ = LENT.try_with(|lent| {
            let mut lent = lent.borrow_mut();
            if let Some(at) = lent.iter().rposition(|r| r.hook == self.address) {
                lent.remove(at);
            }
        });
    }
}

/// The address of a lent hook, valid during the pass that collected it.
pub(crate) struct LentHook<F: Float> {
    hook: *mut &'static mut dyn Hook<F>,
}

// SAFETY: a `LentHook` is only dereferenced by the pass that collected it, one thread at a time
// (the pass may move to one of rayon's threads while the collecting thread waits for it), and
// the hook behind it is `Send` (`Hook: Send`).
unsafe impl<F: Float> Send for LentHook<F> {}

impl<F: Float> LentHook<F> {
    /// The hook.
    ///
    /// # Safety
    /// Only during the pass whose [`collect`] call produced this address.
    pub(crate) unsafe fn hook(&mut self) -> &mut dyn Hook<F> {
        // SAFETY: the registration lives (see `collect`), so the `&mut dyn Hook<F>` it points at
        // is alive and exclusively lent to this pass.
        unsafe { &mut **self.hook }
    }
}

/// Replaces the contents of `buffer` with the hooks lent to network `network` on this thread,
/// in the order they were lent (outermost first). The buffer must be emptied when the pass
/// ends ([`Vec::clear`]); its capacity is reused, so a steady-state pass allocates nothing.
pub(crate) fn collect<F: Float>(network: u64, buffer: &mut Vec<LentHook<F>>) {
    buffer.clear();
    let _ = LENT.try_with(|lent| {
        let lent = lent.borrow();
        for r in lent.iter().filter(|r| r.network == network && r.float == TypeId::of::<F>()) {
            buffer.push(LentHook { hook: r.hook as *mut &'static mut dyn Hook<F> });
        }
    });
}
