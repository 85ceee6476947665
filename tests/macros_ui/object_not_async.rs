// A published method must be async; helpers take #[versile(skip)].
struct Adder;

#[versile::object]
impl Adder {
    fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
