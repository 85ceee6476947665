// Argument types must be known to convert them from the wire.
struct Echo;

#[versile::object]
impl Echo {
    async fn echo<T: versile::FromValue>(&self, value: T) -> i64 {
        let _ = value;
        0
    }
}

fn main() {}
