/// `--cache-mb`, as `birthday-api serve` takes it, for the programs that
/// open the benchmark's sled directories themselves.
#[derive(Debug, clap::Args)]
pub struct SledCacheArg {
    /// sled page cache size in MiB (the service's default).
    #[arg(long, env = "BIRTHDAY_CACHE_MB", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_mb: u64,
}
