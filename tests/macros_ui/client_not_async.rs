// A client method is an async declaration taking &self.
#[versile::client]
trait Adder {
    fn add(&self, n: i64) -> i64;
    async fn reset(&mut self);
    async fn result(&self) -> i64 {
        0
    }
}

fn main() {}
