// One object serves many calls: it cannot be consumed by one (it can be
// shared: `self: Arc<Self>`).
struct Adder;

#[versile::object]
impl Adder {
    async fn add(self, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn zero() -> i64 {
        0
    }

    async fn boxed(self: Box<Self>) -> i64 {
        0
    }
}

fn main() {}
