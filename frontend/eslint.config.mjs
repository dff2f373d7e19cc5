import nextVitals from "eslint-config-next/core-web-vitals";
import nextTs from "eslint-config-next/typescript";

const config = [
  ...nextVitals,
  ...nextTs,
  {
    rules: {
      // Text for people lives in lib/i18n; components take it from the dictionary.
      "react/jsx-no-literals": ["error", { noStrings: true, ignoreProps: true, allowedStrings: ["·", "—", "/", "×", "%", "(", ")", ":"] }],
    },
  },
  { ignores: [".next/**", "node_modules/**", "next-env.d.ts", "test-results/**"] },
];

export default config;
