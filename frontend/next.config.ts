import type { NextConfig } from "next";

// One build serves any Supabase: its URL and anon key are read on the server at run time (see
// lib/supabase/config.ts), so `make run`, the tests' stacks on free ports and a deployment share a build.
const nextConfig: NextConfig = {
  output: "standalone",
  // The Python API's paths end in a slash (POST /api/messages/): proxy them as they are.
  skipTrailingSlashRedirect: true,
  poweredByHeader: false,
  reactStrictMode: true,
};

export default nextConfig;
