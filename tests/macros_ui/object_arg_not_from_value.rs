// Arguments are owned types with FromValue: not &str, not a user type.
struct Greeter;

struct Name(String);

#[versile::object]
impl Greeter {
    async fn greet(&self, name: Name) -> String {
        name.0
    }

    async fn shout(&self, text: &str) -> String {
        text.to_uppercase()
    }
}

fn main() {}
