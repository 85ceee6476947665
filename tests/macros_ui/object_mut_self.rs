// Calls run concurrently: &mut self cannot be served.
struct Counter {
    n: i64,
}

#[versile::object]
impl Counter {
    async fn add(&mut self, k: i64) -> i64 {
        self.n += k;
        self.n
    }
}

fn main() {}
