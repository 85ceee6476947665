// Arguments convert into a Value, results from one.
struct Name(String);

#[versile::client]
trait Greeter {
    async fn greet(&self, name: Name) -> String;
    async fn name(&self) -> Name;
}

fn main() {}
