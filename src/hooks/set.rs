//! Hooks, the set of hooks attached to a network, and handles to remove them.

use std::any::Any;
use std::marker::PhantomData;

use super::Event;
use crate::Float;

/// Something that watches events. Any `FnMut(&mut Event<F>) + Send` closure is one; recorders
/// and detectors in [`crate::hooks`] are others.
///
/// A hook attached to a network with [`crate::Network::attach_hook`] is owned by the network
/// and must be `'static`; a hook lent for a stretch of code with [`crate::Network::with_hook`]
/// may borrow local state (a closure that pushes into a local `Vec`).
pub trait Hook<F: Float>: Send {
    /// Called for every event, in the documented order.
    fn on_event(&mut self, event: &mut Event<'_, F>);

    /// Whether [`crate::Network::step`] should measure how far each parameter moves and show
    /// the hooks [`Event::Update`]s. Measuring costs a little in every optimizer step, so it is
    /// off unless a hook asks: `false` by default and for closures (wrap a closure in
    /// [`WithUpdates`] to receive updates); a [`crate::hooks::Recorder`] asks when it records
    /// update ratios.
    fn wants_updates(&self) -> bool {
        false
    }

    /// Called by [`crate::Network::report_loss`] with the loss of the step's forward pass (the
    /// [`crate::train::Trainer`] reports every training step's loss). Does nothing by default;
    /// a [`crate::hooks::Recorder`] keeps it for the diagnosis of training.
    fn on_loss(&mut self, step: u64, loss: f64) {
        let _ = (step, loss);
    }
}

/// A closure hook that also receives [`Event::Update`]s from [`crate::Network::step`]
/// (plain closures do not ask for them: see [`Hook::wants_updates`]).
///
/// ```
/// use gradflow::hooks::{Event, WithUpdates};
/// let mut largest = 0.0f64;
/// let hook = WithUpdates(move |event: &mut Event<'_, f32>| {
///     if let Event::Update(e) = event {
///         largest = e.updates.iter().fold(largest, |m, u| m.max(u.norm));
///     }
/// });
/// # let _ = hook;
/// ```
#[derive(Debug, Clone)]
pub struct WithUpdates<C>(pub C);

impl<F: Float, C> Hook<F> for WithUpdates<C>
where
    C: FnMut(&mut Event<'_, F>) + Send,
{
    fn on_event(&mut self, event: &mut Event<'_, F>) {
        (self.0)(event)
    }

    fn wants_updates(&self) -> bool {
        true
    }
}

impl<F: Float, C> Hook<F> for C
where
    C: FnMut(&mut Event<'_, F>) + Send,
{
    fn on_event(&mut self, event: &mut Event<'_, F>) {
        self(event)
    }
}

/// A typed ticket for a hook attached to a network: read the hook back with it, or remove it.
#[derive(Debug)]
pub struct HookHandle<H> {
    id: u64,
    _hook: PhantomData<fn() -> H>,
}

impl<H> Clone for HookHandle<H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H> Copy for HookHandle<H> {}

/// A hook the set owns: any `'static` hook, seen as [`Any`] to be handed back by type.
trait OwnedHook<F: Float>: Hook<F> + Any {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn as_hook(&mut self) -> &mut dyn Hook<F>;
}

impl<F: Float, H: Hook<F> + 'static> OwnedHook<F> for H {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn as_hook(&mut self) -> &mut dyn Hook<F> {
        self
    }
}

/// The hooks attached to a network, called in the order they were attached.
pub struct HookSet<F: Float> {
    hooks: Vec<(u64, Box<dyn OwnedHook<F>>)>,
    next_id: u64,
}

impl<F: Float> Default for HookSet<F> {
    fn default() -> Self {
        HookSet { hooks: Vec::new(), next_id: 0 }
    }
}

impl<F: Float> std::fmt::Debug for HookSet<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookSet").field("hooks", &self.hooks.len()).finish()
    }
}

impl<F: Float> HookSet<F> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches `hook`; it stays until removed with the returned handle.
    pub fn attach<H: Hook<F> + 'static>(&mut self, hook: H) -> HookHandle<H> {
        let id = self.next_id;
        self.next_id += 1;
        self.hooks.push((id, Box::new(hook)));
        HookHandle { id, _hook: PhantomData }
    }

    /// Removes the hook and gives it back (with whatever it collected), or `None` if it was
    /// already removed.
    pub fn detach<H: Hook<F> + 'static>(&mut self, handle: HookHandle<H>) -> Option<H> {
        let index = self.hooks.iter().position(|(id, _)| *id == handle.id)?;
        let (_, boxed) = self.hooks.remove(index);
        boxed.into_any().downcast::<H>().ok().map(|b| *b)
    }

    /// The attached hook, to read what it collected.
    pub fn get<H: Hook<F> + 'static>(&self, handle: HookHandle<H>) -> Option<&H> {
        let (_, boxed) = self.hooks.iter().find(|(id, _)| *id == handle.id)?;
        boxed.as_any().downcast_ref::<H>()
    }

    /// The attached hook, mutably (e.g. to reset it).
    pub fn get_mut<H: Hook<F> + 'static>(&mut self, handle: HookHandle<H>) -> Option<&mut H> {
        let (_, boxed) = self.hooks.iter_mut().find(|(id, _)| *id == handle.id)?;
        boxed.as_any_mut().downcast_mut::<H>()
    }

    /// Number of attached hooks.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// True when no hook is attached.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Whether any attached hook asks for update events ([`Hook::wants_updates`]).
    pub fn wants_updates(&self) -> bool {
        self.hooks.iter().any(|(_, h)| h.wants_updates())
    }

    pub(crate) fn hooks_mut(&mut self) -> impl Iterator<Item = &mut dyn Hook<F>> {
        self.hooks.iter_mut().map(|(_, h)| h.as_hook())
    }
}
