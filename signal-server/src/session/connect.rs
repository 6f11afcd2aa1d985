//! The connect step of the `/` namespace: refuses a session that already
//! closed, and installs the socket's handlers before the connect packet is
//! sent, so no event can arrive before them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use socketioxide::handler::{ConnectHandler, Value};
use socketioxide::socket::Socket;

use super::Direct;
use crate::delivery::Delivery;
use crate::node::{Engine, Node};

/// The connect handler of the `/` namespace.
pub struct Connect<E: Engine>(pub Arc<Node<E>>);

impl<E: Engine> Clone for Connect<E> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

type Refusal = Box<dyn std::fmt::Display + Send>;

impl<E: Engine> ConnectHandler<E::A, Direct> for Connect<E> {
    fn call(&self, _: Arc<Socket<E::A>>, _: Option<Value>) {}

    /// Runs before the connect packet is sent.
    fn call_middleware<'a>(
        &'a self,
        s: Arc<Socket<E::A>>,
        _: &'a Option<Value>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>> {
        let node = &self.0;
        if node.state.closed.is_closed(s.id) {
            // A connect packet read after its own session closed (`4x`,
            // `40` in one polling POST): refused, or the socket would get
            // events and never a disconnect.
            let closed: Refusal = Box::new("the session is closed");
            return Box::pin(std::future::ready(Err(closed)));
        }
        node.out.attach(&s);
        E::attach(node, &s);
        node.state.metrics.connected();
        tracing::debug!(sid = %s.id, "connected");
        Box::pin(std::future::ready(Ok(())))
    }
}
