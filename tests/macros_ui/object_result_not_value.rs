// Results convert into a Value; errors into a CallError.
struct Clock;

struct Instant(u64);

#[derive(Debug)]
struct ClockError;

#[versile::object]
impl Clock {
    async fn now(&self) -> Instant {
        Instant(0)
    }

    async fn try_now(&self) -> Result<u64, ClockError> {
        Ok(0)
    }
}

fn main() {}
